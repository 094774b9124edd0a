"""What some devices offer beyond their base: health for the run report, and what a wrapper wraps.

The run report asks these protocols (``isinstance`` against them), not attribute names: a motor
bus reports its health (:class:`ReportsHealth`), a wrapper such as the dry run exposes the device
it wraps (:class:`WrapsDevice`; :func:`unwrap` finds the real one).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from hal.devices.base import Device

__all__ = ["HealthReport", "ReportsHealth", "ReportsStatus", "WrapsDevice", "unwrap"]


@runtime_checkable
class HealthReport(Protocol):
    """A device's health at one moment, as JSON-ready data for the run report."""

    def to_dict(self) -> dict[str, Any]:
        """The health as a JSON-ready dict."""


@runtime_checkable
class ReportsHealth(Protocol):
    """A device that reports its health (the Go2: temperatures and losses; the serial bus:
    frame counters). ``health()`` needs the device connected."""

    def health(self) -> HealthReport:
        """The health now."""


@runtime_checkable
class ReportsStatus(Protocol):
    """A device with its own section of the run report (the ZED: grab health, warnings by
    name; a recording: its grab thread's counters)."""

    def report(self) -> dict[str, Any]:
        """JSON-ready counters and state."""


@runtime_checkable
class WrapsDevice(Protocol):
    """A device that wraps another (the dry run wraps the real joint driver)."""

    @property
    def wrapped(self) -> Device:
        """The device this one wraps."""


def unwrap(device: Device) -> Device:
    """The innermost device under any wrappers (``device`` itself when it wraps nothing)."""
    seen = 0
    while isinstance(device, WrapsDevice):
        device = device.wrapped
        seen += 1
        if seen > 32:
            raise ValueError(f"{type(device).__name__}: wrappers nest deeper than 32 (a cycle?)")
    return device
