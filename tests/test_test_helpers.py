"""The helpers that keep the suite from hanging or lying fail when they should."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tests.child_process import ChildProcess

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).with_name("conftest.py").read_text()


def test_the_context_fixture_fails_a_test_that_leaves_a_socket_open(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_leaky="""
        import zmq

        KEPT = []  # still referenced after the test: nothing closes it for the test

        def test_leaks(zmq_context):
            sock = zmq_context.socket(zmq.PULL)
            sock.bind("tcp://127.0.0.1:*")
            KEPT.append(sock)

        def test_tidy(zmq_context):
            sock = zmq_context.socket(zmq.PULL)
            sock.bind("tcp://127.0.0.1:*")
            sock.close(linger=0)
    """)
    result = pytester.runpytest_subprocess("-q", timeout=120)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*left 1 ZMQ socket(s) open: PULL socket on tcp://127.0.0.1:*"])


def test_tcp_endpoints_are_read_back_from_the_bound_socket(zmq_context):
    import zmq

    from hal.transport import CommandReceiver

    receiver = CommandReceiver("tcp://127.0.0.1:*", 12, zmq_context)
    try:
        host, port = receiver.last_endpoint.rsplit(":", 1)
        assert host == "tcp://127.0.0.1" and 0 < int(port) < 65536
        push = zmq_context.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 0)
        push.connect(receiver.last_endpoint)  # a real, connectable endpoint
        push.close()
    finally:
        receiver.close()


def test_a_child_that_never_exits_is_killed_at_its_deadline():
    child = ChildProcess([sys.executable, "-c", "import time; print('up', flush=True); "
                          "time.sleep(600)"], timeout_s=30)
    assert child.first_line() == "up"
    start = time.monotonic()
    with pytest.raises(AssertionError, match="did not exit in time; killed"):
        child.wait(timeout_s=0.5)
    assert time.monotonic() - start < 10 and not child.running()


def test_a_child_writing_more_than_a_pipe_holds_is_not_blocked():
    # 2 MB on stdout and stderr: an unread pipe (64 KiB) would stall the child forever.
    code = ("import sys\nfor i in range(20000):\n    print('x' * 50, i)\n"
            "    print('e' * 50, i, file=sys.stderr)\n")
    with ChildProcess([sys.executable, "-c", code], timeout_s=60) as child:
        assert child.wait() == 0
    assert len(child.lines) == 40000 and child.lines[-1].startswith("e")


def test_a_silent_child_fails_first_line_instead_of_hanging():
    with ChildProcess([sys.executable, "-c", "import time; time.sleep(600)"], timeout_s=0.5) as child:
        with pytest.raises(AssertionError, match="no output"):
            child.first_line()
    assert not child.running()
