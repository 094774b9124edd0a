"""A small Foxglove WebSocket protocol client (the tests' and ``hal.live.snapshot``'s), written
from the protocol, not the SDK, so it checks what any client would see.

It speaks subprotocol ``foxglove.sdk.v1`` (what foxglove-sdk 0.30 answers): text frames are JSON
(``serverInfo``, ``advertise``, ``unadvertise``, ``status``; ``subscribe``/``unsubscribe`` and
anything a hostile client tries, the other way), binary frames from the server are
``messageData``: opcode 0x01, subscription id (uint32 LE), log time (uint64 LE), payload. A
payload decodes with the schema its channel advertised: protobuf through the advertised
``FileDescriptorSet`` (the ``protobuf`` package's descriptor pool), JSON through ``json``.
"""

from __future__ import annotations

import base64
import json
import struct
import time
from typing import Any

from hal.optional import require
from hal.recorder.protobuf_decode import message_class

__all__ = ["FoxgloveClient", "SUBPROTOCOL", "decode_protobuf"]

SUBPROTOCOL = "foxglove.sdk.v1"
MESSAGE_DATA = 0x01
_HEADER = struct.Struct("<BIQ")


def decode_protobuf(schema_name: str, file_descriptor_set: bytes, payload: bytes) -> Any:
    """Decode ``payload`` as message ``schema_name`` of the given ``FileDescriptorSet``."""
    return message_class(schema_name, file_descriptor_set).FromString(payload)


class FoxgloveClient:
    """A connection to a Foxglove WebSocket server.

    Args:
        port: The server's port.
        timeout_s: Open and first-messages timeout.
        host: The server's address (loopback by default).
    """

    def __init__(self, port: int, timeout_s: float = 10.0, host: str = "127.0.0.1") -> None:
        require("websockets", "a Foxglove WebSocket client")
        from websockets.sync.client import connect

        self._connection = connect(f"ws://{host}:{port}", subprotocols=[SUBPROTOCOL],
                                   open_timeout=timeout_s, close_timeout=2, max_size=1 << 24)
        self.ws = self._connection.__enter__()
        self.subprotocol = self.ws.subprotocol
        self.server_info: dict[str, Any] = {}
        self.channels: dict[str, dict[str, Any]] = {}  # topic -> advertised channel
        self.text: list[dict[str, Any]] = []  # every other JSON message (status, ...)
        self._subs: dict[int, dict[str, Any]] = {}
        self._classes: dict[int, Any] = {}
        self._raw: list[tuple[int, int, bytes]] = []  # (subscription, log time, payload)
        self._received: dict[str, list[tuple[int, Any]]] = {}
        deadline = time.monotonic() + timeout_s
        while (not self.server_info or not self.channels) and time.monotonic() < deadline:
            self._handle(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))

    # -- protocol ----------------------------------------------------------------------------------

    def _handle(self, frame: Any) -> None:
        if isinstance(frame, str):
            msg = json.loads(frame)
            op = msg.get("op")
            if op == "serverInfo":
                self.server_info = msg
            elif op == "advertise":
                for channel in msg["channels"]:
                    self.channels[channel["topic"]] = channel
            elif op == "unadvertise":
                gone = set(msg["channelIds"])
                self.channels = {t: c for t, c in self.channels.items() if c["id"] not in gone}
            else:
                self.text.append(msg)
            return
        opcode, sub_id, log_time = _HEADER.unpack_from(frame)
        if opcode == MESSAGE_DATA and sub_id in self._subs:
            # Decoded when read (``received``): receiving stays cheap while the robot runs.
            self._raw.append((sub_id, log_time, bytes(frame[_HEADER.size:])))

    @property
    def received(self) -> dict[str, list[tuple[int, Any]]]:
        """Topic → [(log time ns, decoded message)], in arrival order."""
        raw, self._raw = self._raw, []
        for sub_id, log_time, payload in raw:
            channel = self._subs[sub_id]
            self._received.setdefault(channel["topic"], []).append(
                (log_time, self._decode(sub_id, channel, payload)))
        return self._received

    def count(self, topic: str) -> int:
        """Messages received on ``topic`` so far (decoded or not)."""
        pending = sum(1 for sub_id, _, _ in self._raw if self._subs[sub_id]["topic"] == topic)
        return len(self._received.get(topic, ())) + pending

    def _decode(self, sub_id: int, channel: dict[str, Any], payload: bytes) -> Any:
        if channel["encoding"] == "json":
            return json.loads(payload)
        if channel["encoding"] != "protobuf":
            raise AssertionError(f"unexpected encoding {channel['encoding']!r}")
        cls = self._classes.get(sub_id)
        if cls is None:
            cls = self._classes[sub_id] = message_class(channel["schemaName"],
                                                        base64.b64decode(channel["schema"]))
        return cls.FromString(payload)

    def send_json(self, message: dict[str, Any]) -> None:
        self.ws.send(json.dumps(message))

    def subscribe(self, topics: list[str], first_id: int = 1) -> None:
        """Subscribe to ``topics`` (each must have been advertised)."""
        subs = []
        for i, topic in enumerate(topics):
            channel = self.channels[topic]
            self._subs[first_id + i] = channel
            subs.append({"id": first_id + i, "channelId": channel["id"]})
        self.send_json({"op": "subscribe", "subscriptions": subs})

    def pump(self, duration_s: float) -> None:
        """Receive for ``duration_s`` (or until the server closes)."""
        deadline = time.monotonic() + duration_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                self._handle(self.ws.recv(timeout=left))
            except TimeoutError:
                return
            except Exception as exc:  # noqa: BLE001 - websockets' ConnectionClosed: the end
                if type(exc).__name__.startswith("ConnectionClosed"):
                    return
                raise

    def wait_for(self, counts: dict[str, int], timeout_s: float) -> bool:
        """Receive until each topic has its count of messages; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(self.count(t) >= n for t, n in counts.items()):
                return True
            self.pump(min(0.2, deadline - time.monotonic()))
        return all(self.count(t) >= n for t, n in counts.items())

    def close(self) -> None:
        self._connection.__exit__(None, None, None)

    def __enter__(self) -> "FoxgloveClient":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
