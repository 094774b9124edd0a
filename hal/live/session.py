"""``--live [HOST:]PORT`` for the appliance: the flag in, the server and publisher up, a report out.

:meth:`LiveSession.from_section` turns the appliance's live settings
(:class:`hal.server.settings.LiveSection`, checked when the configuration was built) into a
session before any device connects; :meth:`LiveSession.attach` (an ``on_started``-style hook) starts
foxglove-sdk's WebSocket server on a context of its own — read-only, loopback unless a host is
named — and hangs the publisher's listeners on the server and the inference client;
:meth:`LiveSession.close` stops both after the loop ended.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

from hal.live.publisher import LiveConfig, LivePublisher, PolicyView
from hal.live.sdk import foxglove_sdk, start_live_server

if TYPE_CHECKING:
    from hal.server.settings import LiveSection

__all__ = ["LiveSession", "policy_view_for"]

log = logging.getLogger(__name__)


def policy_view_for(robot: Any, is_student: bool) -> PolicyView:
    """Where the scan and the heading sit in the parkour observation (the training layout)."""
    from compute.parkour.layout import (SCAN_HEIGHT_OFFSET_M, YAW_SCALE, ObservationLayout,
                                        scan_points_xy)

    lay = ObservationLayout.from_robot(robot)
    return PolicyView(scan=lay.scan if lay.scan_dim else None, scan_points_xy=scan_points_xy(),
                      scan_offset_m=SCAN_HEIGHT_OFFSET_M, yaw=tuple(lay.yaw),
                      yaw_scale=YAW_SCALE if is_student else 1.0)


class LiveSession:
    """The live view of one appliance run.

    Args:
        host: Address to bind (loopback by default; another one logs a warning).
        port: Port (0: any free one; see :attr:`port` once started).
        config: Rates and bounds.
    """

    def __init__(self, host: str, port: int, config: LiveConfig | None = None) -> None:
        self.host, self.requested_port = host, port
        self.config = config or LiveConfig()
        self.server: Any = None
        self.context: Any = None
        self.publisher: LivePublisher | None = None
        self._detach: list[Callable[[], None]] = []
        self.port: int | None = None

    @classmethod
    def from_section(cls, settings: LiveSection) -> "LiveSession | None":
        """The session ``--live`` asks for, or None when it is off.

        Raises:
            MissingDependencyError: foxglove-sdk is not installed (before any device connects).
        """
        address = settings.address
        if address is None:
            return None
        foxglove_sdk()  # a missing SDK fails here, before any device connects
        depth_hz = settings.live_depth_hz
        return cls(*address, LiveConfig(depth_rate_hz=depth_hz, camera_rate_hz=depth_hz / 2))

    def attach(self, server: Any, client: Any = None, scene: Any = None) -> None:
        """Start the WebSocket server and the publisher; hang the listeners.

        Args:
            server: The started :class:`~hal.server.base.HalServer`.
            client: The in-process inference client, or None.
            scene: The simulator's :class:`~hal.sim.foxglove_scene.SimScene`, or None.
        Raises:
            OSError: the address cannot be bound.
        """
        foxglove = foxglove_sdk()
        # Held for the run: the SDK closes a context's channels when the context is dropped.
        self.context = context = foxglove.Context()
        view = policy_view_for(client.robot, client.is_student) if client is not None else None
        command = (lambda: client.command) if client is not None else None
        self.publisher = publisher = LivePublisher(
            context, list(server.robot.joint_names_hardware), self.config, safety=server.safety,
            policy_view=view, scene=scene, command_source=command)
        self.server = start_live_server(self.host, self.requested_port, context)
        self.port = self.server.port
        server.tick_listeners.append(publisher.on_tick)
        self._detach.append(lambda: server.tick_listeners.remove(publisher.on_tick))
        if client is not None:
            client.actor_listeners.append(publisher.on_actor)
            client.depth_listeners.append(publisher.on_depth)
            self._detach.append(lambda: client.actor_listeners.remove(publisher.on_actor))
            self._detach.append(lambda: client.depth_listeners.remove(publisher.on_depth))
        publisher.start()
        log.info("live view: ws://%s:%d (Foxglove: open a connection to it; layout "
                 "docs/foxglove-layout.json)", self.host, self.port)

    def attach_operator(self, hub: Any) -> None:
        """Stream the operator hub's events (``/operator/event``)."""
        if self.publisher is not None:
            hub.change_listeners.append(self.publisher.on_operator_event)

    def close(self) -> None:
        """Detach, stop the publisher and the server (after the loop and the client stopped)."""
        for detach in self._detach:
            try:
                detach()
            except ValueError:
                pass
        self._detach.clear()
        if self.publisher is not None:
            self.publisher.close()
        if self.server is not None:
            self.server.stop()
            self.server = None

    def report(self) -> dict[str, Any]:
        """The run report's ``live`` section: address, messages sent and dropped per stream."""
        out: dict[str, Any] = {"host": self.host, "port": self.port}
        if self.publisher is not None:
            out.update(self.publisher.report())
        return out
