"""Starting Unitree's DDS (``unitree_sdk2py`` over Cyclone DDS) on a named interface.

Shared by the Go2 backend (:mod:`hal.backends.unitree_go2`) and the robot double
(:mod:`hal.sim.go2_dds`). Cyclone DDS left to itself picks the first non-loopback interface and
multicasts its discovery there, so both name the interface every time: the robot's wired
network on hardware, ``lo`` against the simulator. The SDK's ``ChannelFactoryInitialize`` raises
a bare ``Exception("channel factory init error.")`` when the domain cannot be created (a wrong
interface name, most often); :func:`initialize_dds` turns that into a one-line error that names
the interface asked for and the interfaces the machine has. The SDK's DDS participant is
process-wide: one domain and interface per process.

:func:`close_subscriber` closes an SDK subscriber whose handler may be running: the SDK's own
``Close`` drops its reader while messages still arrive, and cyclonedds keeps its entities in a
weak registry, so the listener thread can end up holding the last reference and deleting the
reader from inside its own callback, which deadlocks the process (seen here at 500 Hz).
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from hal.config.sections import MAX_DDS_DOMAIN_ID, NETWORK_HELP
from hal.devices.base import DeviceError
from hal.optional import require

__all__ = ["DdsInitError", "machine_interfaces", "initialize_dds", "initialized_as", "close_subscriber"]

log = logging.getLogger(__name__)

_state: dict[str, Any] = {}


class DdsInitError(DeviceError):
    """DDS could not start on the interface asked for (the message names it and the valid ones)."""


def machine_interfaces() -> list[str]:
    """This machine's network interface names (``socket.if_nameindex``)."""
    try:
        return [name for _, name in socket.if_nameindex()]
    except OSError:  # pragma: no cover - platforms without if_nameindex
        return []


def initialized_as() -> tuple[int, str] | None:
    """(domain id, interface) this process's DDS started on, or None before."""
    return _state.get("as")


def initialize_dds(domain_id: int, interface: str) -> None:
    """``ChannelFactoryInitialize(domain_id, interface)`` once per process.

    Raises:
        ValueError: no interface given, or a bad domain id.
        DdsInitError: the SDK could not create the domain (message names the interfaces).
        RuntimeError: this process's DDS already runs on another domain or interface.
    """
    if not interface:
        raise ValueError(f"--network is required: {NETWORK_HELP}")
    if not isinstance(domain_id, int) or not 0 <= domain_id <= MAX_DDS_DOMAIN_ID:
        raise ValueError(f"DDS domain id {domain_id!r} must be an integer in "
                         f"0..{MAX_DDS_DOMAIN_ID} (0 on the robot)")
    done = _state.get("as")
    if done is not None:
        if done != (domain_id, interface):
            raise RuntimeError(f"DDS already runs on domain {done[0]} interface {done[1]!r} in this "
                               f"process; it cannot also use domain {domain_id} on {interface!r}")
        return
    require("unitree_sdk2py", "the Unitree Go2 over DDS")
    channel = require("unitree_sdk2py.core.channel")
    try:
        channel.ChannelFactoryInitialize(domain_id, interface)
    except Exception as exc:  # noqa: BLE001 - the SDK raises a bare Exception
        names = machine_interfaces()
        hint = "" if interface in names else " (no such interface)"
        raise DdsInitError(f"DDS could not start on network interface {interface!r}{hint}, domain "
                           f"{domain_id} ({exc}); this machine has: {', '.join(names) or 'none'}. "
                           f"Pass --network with one of them: {NETWORK_HELP}") from None
    _state["as"] = (domain_id, interface)
    log.info("DDS: domain %d on interface %s", domain_id, interface)


def close_subscriber(subscriber: Any) -> None:
    """Close a ``ChannelSubscriber`` safely while its topic is live (see the module doc): remove
    the reader's listener first (cyclonedds waits for a callback in flight), keep a reference
    across the SDK's ``Close``, and drop the last one here, on this thread."""
    try:
        reader = subscriber._ChannelSubscriber__channel._Channel__reader._Reader__reader  # noqa: SLF001
    except AttributeError:  # another SDK layout: its own Close is all there is
        reader = None
    if reader is not None:
        try:
            reader.set_listener(None)
        except Exception:  # noqa: BLE001 - closing goes on
            log.debug("removing the DDS listener failed", exc_info=True)
    subscriber.Close()
    del reader  # the DataReader's last reference: deleted on this thread, no callback can run
