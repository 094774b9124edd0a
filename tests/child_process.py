"""A child process for tests that cannot hang the suite: output read while it runs, killed on time.

``subprocess.Popen(stdout=PIPE)`` left unread blocks the child once the pipe buffer fills, and a
bare ``readline()`` or ``wait()`` blocks the test forever if the child never answers. Here a
reader thread drains stdout and stderr (merged) into lines as they come, every wait has a
deadline, and leaving the ``with`` block terminates the child, then kills it if it lingers.
"""

from __future__ import annotations

import subprocess
import threading
import time
from typing import Sequence

__all__ = ["ChildProcess"]


class ChildProcess:
    """Run ``command``; ``lines`` fill while it runs.

    Args:
        command: argv.
        timeout_s: The longest any one wait of this object blocks (and the default of each).
        **popen: Passed to :class:`subprocess.Popen` (``env``, ``cwd``).
    """

    def __init__(self, command: Sequence[str], timeout_s: float = 60.0, **popen) -> None:
        self.timeout_s = timeout_s
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._proc = subprocess.Popen(list(command), stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, bufsize=1, **popen)
        self._reader = threading.Thread(target=self._read, name="child-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        """Everything the child wrote so far (stdout and stderr, in order)."""
        with self._changed:
            return "\n".join(self.lines)

    @property
    def returncode(self) -> int | None:
        return self._proc.poll()

    def running(self) -> bool:
        return self._proc.poll() is None

    def first_line(self, timeout_s: float | None = None) -> str:
        """The first line the child writes, waiting at most ``timeout_s``.

        Raises:
            AssertionError: none came in time (the child's output so far is in the message).
        """
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        with self._changed:
            while not self.lines:
                left = deadline - time.monotonic()
                if left <= 0 or (not self._reader.is_alive() and not self.lines):
                    raise AssertionError(f"no output from {self._proc.args} (exit "
                                         f"{self._proc.poll()})")
                self._changed.wait(min(left, 0.1))
            return self.lines[0]

    def wait(self, timeout_s: float | None = None) -> int:
        """Wait for the child to exit; kill it and fail if it does not within ``timeout_s``."""
        try:
            code = self._proc.wait(self.timeout_s if timeout_s is None else timeout_s)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(10)
            raise AssertionError(f"{self._proc.args} did not exit in time; killed. Output:\n"
                                 f"{self.output[-3000:]}") from None
        self._reader.join(10)
        return code

    def stop(self, timeout_s: float = 10.0) -> int:
        """Terminate (SIGTERM), then kill if it has not exited within ``timeout_s``."""
        if self._proc.poll() is None:
            self._proc.terminate()
        try:
            self._proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(10)
        self._reader.join(10)
        return self._proc.returncode

    def __enter__(self) -> "ChildProcess":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
