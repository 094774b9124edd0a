"""The Jetson's own code: the ZED depth camera and IMU, their intrinsics and transforms, and the
Jetson platform's facts (L4T release, power mode, GPU clocks).

One backend per module; import the module you need (``from hal.jetson.zed_camera import
ZedDepthCamera``), or choose it by name (``--camera zed``, :mod:`hal.devices.registry`). Backends
that are no platform's own (the Go2 SDK, the serial motor bus, the dry run) are in
:mod:`hal.backends`. Nothing here imports pyzed at import time: each backend asks
:func:`hal.optional.require` when it connects.
"""
