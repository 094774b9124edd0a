"""What a ZED SDK status code means: success, a warning (the call did its work), or an error.

pyzed's ``sl.ERROR_CODE`` is an ``enum.Enum`` whose values are the C++ ``sl::ERROR_CODE`` integers
(``SUCCESS = <int>c_ERROR_CODE.SUCCESS`` in Stereolabs' ``pyzed/sl.pyx``). ``SUCCESS`` is 0,
errors are positive, and the warnings are negative (Stereolabs' ``zed-c-api`` ``types_c.h``, which
mirrors the C++ enum with explicit values):

=============================  =====  =========================================================
code                           value  meaning
=============================  =====  =========================================================
SENSOR_CONFIGURATION_CHANGED    -6    the sensor's configuration changed while streaming (newest)
POTENTIAL_CALIBRATION_ISSUE     -5    the camera may need recalibrating
CONFIGURATION_FALLBACK          -4    "did success with a fallback" (e.g. another resolution)
SENSORS_DATA_REQUIRED           -3    the input has no high-rate sensor data (SVO / stream)
CORRUPTED_FRAME                 -2    the image is corrupted (``enable_image_validity_check``)
CAMERA_REBOOTING                -1    the camera is rebooting
SUCCESS                          0
FAILURE, CAMERA_NOT_DETECTED...  >0   errors
=============================  =====  =========================================================

Stereolabs' own depth sample fails ``open`` only on ``status > SUCCESS`` and takes ``grab`` results
``<= SUCCESS`` ("SUCCESS or a WARNING"). ``ERROR_CODE`` has no ordering operators in SDK 4.2 and
5.0.0 (later 5.0.x releases added ``__lt__``... comparing ``.value``), so :func:`classify` compares
the integer value itself, which works on every release and for warning codes added later.

``str()``/``repr()`` of a pyzed code is the SDK's sentence (``toString``), not the enum name;
:func:`code_name` gives the name, which is what the logs and the doctor show.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SUCCESS", "WARNING", "ERROR", "CORRUPTED_FRAME", "WARNING_LOG_INTERVAL_S", "code_value",
           "code_name", "classify"]

SUCCESS = "success"
WARNING = "warning"
ERROR = "error"
#: The grab warning after which the frame must not be used (dropped and counted).
CORRUPTED_FRAME = "CORRUPTED_FRAME"
#: Grab threads log each warning code at most once per this many seconds.
WARNING_LOG_INTERVAL_S = 5.0


def code_value(code: Any) -> int:
    """The integer of an ``sl.ERROR_CODE`` member (its ``.value``), or of a plain int.

    Raises:
        TypeError: ``code`` is neither (the message names what it got).
    """
    value = getattr(code, "value", code)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"not a ZED status code: {code!r} (expected an sl.ERROR_CODE member or an int)")
    return value


def code_name(code: Any) -> str:
    """``CORRUPTED_FRAME`` for ``sl.ERROR_CODE.CORRUPTED_FRAME``; the number for an unnamed int."""
    name = getattr(code, "name", None)
    return str(name) if name else str(code_value(code))


def classify(code: Any) -> str:
    """:data:`SUCCESS` (0), :data:`WARNING` (negative: the call did its work) or :data:`ERROR`."""
    value = code_value(code)
    if value == 0:
        return SUCCESS
    return WARNING if value < 0 else ERROR
