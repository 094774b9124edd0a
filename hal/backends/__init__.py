"""Device backends that are no platform's own, and the built-in registrations.

One backend per module: the Unitree Go2 over its SDK (:mod:`hal.backends.unitree_go2`, pure message
handling in :mod:`hal.backends.go2_messages`), the serial motor bus (:mod:`hal.backends.serial_bus`,
wire format :mod:`hal.backends.serial_protocol` and ``SERIAL_PROTOCOL.md``), and the dry-run
wrapper (:mod:`hal.backends.dry_run`). :mod:`hal.backends.builtin` registers every built-in
backend (these, the ZED of :mod:`hal.jetson`, the recording player of :mod:`hal.playback`, the
simulator's) by kind and name in :mod:`hal.devices.registry`. Nothing here imports pyserial or the
Unitree SDK at import time: each backend asks :func:`hal.optional.require` when it connects.
"""
