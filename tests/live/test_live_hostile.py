"""A hostile client against ``krabby-hal-server-sim --live``: one that sends data (advertise and
publish, service calls, parameter and graph requests, asset fetches, garbage), one that subscribes
to everything at once and never reads, and a few hundred that connect and drop. The server refuses
every request (it has no capability), and the run is the run a quiet one would be: no deadline
missed, the rate held, the operator's command and the safety layer's transitions untouched."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time

import pytest

for _extra in ("foxglove", "websockets", "google.protobuf"):  # the [live] extra
    pytest.importorskip(_extra)

from .appliance import live_port, read_report, start_live_sim  # noqa: E402
from hal.live.client import FoxgloveClient  # noqa: E402

RATE_HZ = 50.0
DURATION_S = 10.0
DROPS = 300

CLIENT_REQUESTS = [
    {"op": "advertise", "channels": [{"id": 7, "topic": "/operator/command", "encoding": "json",
                                      "schemaName": "krabby.OperatorCommand", "schema": "{}"}]},
    {"op": "getParameters", "parameterNames": ["speed"], "id": "g"},
    {"op": "setParameters", "parameters": [{"name": "forward_speed_m_s", "value": 1.5}], "id": "s"},
    {"op": "subscribeParameterUpdates", "parameterNames": ["forward_speed_m_s"]},
    {"op": "subscribeConnectionGraph"},
    {"op": "fetchAsset", "uri": "file:///etc/passwd", "requestId": 3},
    {"op": "unadvertise", "channelIds": [1, 2, 3]},
]


def _attack(port: int, out: dict) -> None:
    """Send every kind of client message, twice a second, for the whole run."""
    with FoxgloveClient(port) as client:
        client.subscribe(sorted(client.channels))  # everything at once
        deadline = time.monotonic() + DURATION_S
        while time.monotonic() < deadline:
            for request in CLIENT_REQUESTS:
                client.send_json(request)
            client.ws.send("{not json")
            stop = {"forward_speed_m_s": 0.0, "mode": "walk"}
            client.ws.send(b"\x01" + struct.pack("<I", 7) + json.dumps(stop).encode())  # publish
            client.ws.send(b"\x02" + struct.pack("<III", 1, 1, 4) + b"json{}")  # call service
            client.ws.send(b"\xff" * 64)
            client.pump(0.5)
        out["status"] = [m for m in client.text if m.get("op") in ("status",
                                                                     "serviceCallFailure")]
        out["received"] = sum(len(v) for v in client.received.values())


def _sleeper(port: int, stop: threading.Event) -> None:
    """Subscribe to everything and never read (the server's backlog must bound it)."""
    client = FoxgloveClient(port)
    client.subscribe(sorted(client.channels))
    stop.wait(DURATION_S)
    client.close()


def _connect_and_drop(port: int, out: dict) -> None:
    done = 0
    for i in range(DROPS):
        try:
            if i % 2:
                with FoxgloveClient(port, timeout_s=5.0):
                    pass
            else:  # a bare TCP connection, reset without a handshake
                raw = socket.create_connection(("127.0.0.1", port), timeout=2.0)
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                raw.close()
            done += 1
        except OSError:
            break  # the run ended
    out["drops"] = done


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_hostile_clients_change_nothing(live_policy, tmp_path):
    report_path = tmp_path / "report.json"
    with start_live_sim(live_policy, report_path, DURATION_S, rate_hz=RATE_HZ) as child:
        port = live_port(child)
        attack, drops, stop = {}, {}, threading.Event()
        threads = [threading.Thread(target=_attack, args=(port, attack), daemon=True),
                   threading.Thread(target=_sleeper, args=(port, stop), daemon=True),
                   threading.Thread(target=_connect_and_drop, args=(port, drops), daemon=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(DURATION_S + 60)
        stop.set()
        assert child.wait(60) == 0, child.output[-3000:]
    report = read_report(report_path)

    assert drops["drops"] >= 100, "the connect-and-drop client did not get going"
    assert attack["received"] > 0
    refused = " ".join(m.get("message", "") for m in attack["status"])
    for capability in ("clientPublish", "parameters", "connection graph", "assets",
                       "services"):
        assert capability in refused, f"no refusal for {capability}: {refused[:500]}"

    # The loop: on time (the bound is this shared machine's noise with live off, see
    # test_live_appliance; a tick the clients lengthened would miss most deadlines).
    assert report["deadline_misses"] <= 0.01 * report["cycles"], report["deadline_misses"]
    assert report["cycles"] >= 0.97 * RATE_HZ * DURATION_S
    # The command: what the launch set, never what a client sent.
    assert report["command"] == {"forward_speed_m_s": 0.5, "mode": "parkour",
                                 "yaw_rate_rad_s": 0.0}
    assert report["operator"]["command_final"] == report["command"]
    assert report["operator"]["events"] == []  # no operator action or command change at all
    assert report["operator"]["counters"]["events"] == 0
    assert report["live"]["errors"] == 0 and report["live"]["sent"]["joints"] > 0
    # The safety layer: the run's own transitions only.
    transitions = [(e["from"], e["to"], e["reason"]) for e in report["safety"]["events"]]
    assert transitions == [("idle", "stand_up", "operator_start"),
                           ("stand_up", "ready", "stand_up_done"),
                           ("ready", "policy", "entry_gate"),
                           ("policy", "damping", "shutdown")]
