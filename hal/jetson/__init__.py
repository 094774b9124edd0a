"""Jetson hardware backends: ZED depth camera and IMU, serial motor bus, Unitree Go2, recorded
playback, and the bring-up tools (``krabby-hal-doctor``, the MCU emulator).

One backend per module; import the module you need (``from hal.jetson.zed_camera import
ZedDepthCamera``). Nothing here imports pyzed, pyserial or the Unitree SDK at import time: each
backend asks :func:`hal.optional.require` when it connects.
"""
