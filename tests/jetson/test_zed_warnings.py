"""ZED status codes by their meaning (issue 24): warnings at open and at grab, on SDK releases whose
``ERROR_CODE`` has no ordering operators (4.2, 5.0.0) and ones that have them (5.1, 5.2).

The fake (tests/fakes/pyzed.py) returns each warning code of its release at ``open``, ``grab`` and
``get_sensors_data``; the expected behaviour: a warning at open is logged by name and the camera is
used, a ``CORRUPTED_FRAME`` is dropped and counted, any other grab warning is logged (rate-limited)
and the frame used, an error code still fails.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from hal.devices.base import DeviceError
from hal.devices.grab_loop import GrabLoop
from hal.jetson import zed_status
from hal.jetson.zed_camera import ZedConfig, ZedDepthCamera, ZedDepthSource, ZedSession
from hal.jetson.zed_imu import ZedImu
from hal.server.jetson.hardware import camera_report
from hal.tools import checks
from hal.tools.checks import OK, WARN
from tests.fakes import install
from tests.fakes.pyzed import ERROR_CODES, ZedScript, make_pyzed

#: (release, whether its ERROR_CODE has ordering operators), per the fake's sources.
RELEASES = [("4.2.5", False), ("5.0.0", False), ("5.1.0", True), ("5.2.0", True)]
# Transcribed by hand from zed-c-api include/sl/c_api/types_c.h (SL_ERROR_CODE_*).
C_API_VALUES = {"SENSOR_CONFIGURATION_CHANGED": -6, "POTENTIAL_CALIBRATION_ISSUE": -5,
                "CONFIGURATION_FALLBACK": -4, "SENSORS_DATA_REQUIRED": -3, "CORRUPTED_FRAME": -2,
                "CAMERA_REBOOTING": -1, "SUCCESS": 0, "FAILURE": 1, "NO_GPU_COMPATIBLE": 2,
                "NOT_ENOUGH_GPU_MEMORY": 3, "CAMERA_NOT_DETECTED": 4}


def _warnings_of(version: str) -> list[str]:
    _, sl = make_pyzed(ZedScript(sdk_version=version))
    return [code.name for code in sl.ERROR_CODE if code.value < 0]


CASES = [(version, ordered, warning) for version, ordered in RELEASES for warning in _warnings_of(version)]
IDS = [f"{v}-{w}" for v, _, w in CASES]


@pytest.fixture
def zed(monkeypatch):
    def make(**fields) -> tuple[ZedScript, object]:
        script = ZedScript(**fields)
        pyzed, sl = make_pyzed(script)
        install(monkeypatch, {"pyzed": pyzed, "pyzed.sl": sl})
        return script, sl

    return make


# -- the classification ----------------------------------------------------------------------------

def test_fake_values_are_the_c_api_values():
    fake = {name: value for _, name, value in ERROR_CODES}
    assert {name: fake[name] for name in C_API_VALUES} == C_API_VALUES


@pytest.mark.parametrize("name, expected", [
    ("SUCCESS", zed_status.SUCCESS), ("CAMERA_REBOOTING", zed_status.WARNING),
    ("CORRUPTED_FRAME", zed_status.WARNING), ("CONFIGURATION_FALLBACK", zed_status.WARNING),
    ("POTENTIAL_CALIBRATION_ISSUE", zed_status.WARNING), ("SENSOR_CONFIGURATION_CHANGED", zed_status.WARNING),
    ("FAILURE", zed_status.ERROR), ("CAMERA_NOT_DETECTED", zed_status.ERROR)])
def test_classify_by_value(name, expected):
    assert zed_status.classify(C_API_VALUES[name]) == expected


@pytest.mark.parametrize("version, ordered", RELEASES)
def test_classify_works_with_and_without_ordering_operators(version, ordered):
    _, sl = make_pyzed(ZedScript(sdk_version=version))
    codes = list(sl.ERROR_CODE)
    if ordered:
        assert (sl.ERROR_CODE.CORRUPTED_FRAME < sl.ERROR_CODE.SUCCESS) is True
    else:  # as in 4.2 and 5.0.0: a plain Enum, `<` is a TypeError
        with pytest.raises(TypeError):
            sl.ERROR_CODE.CORRUPTED_FRAME < sl.ERROR_CODE.SUCCESS  # noqa: B015
    for code in codes:
        value = C_API_VALUES.get(code.name, code.value)  # the C API's number where transcribed
        expected = zed_status.SUCCESS if value == 0 else (zed_status.WARNING if value < 0 else zed_status.ERROR)
        assert zed_status.classify(code) == expected, code.name
        assert zed_status.code_name(code) == code.name  # not str(): that is the SDK's sentence


def test_classify_names_a_value_that_is_no_code():
    with pytest.raises(TypeError, match="not a ZED status code: 'SUCCESS'"):
        zed_status.classify("SUCCESS")


def test_releases_have_their_warning_codes_and_resolutions():
    assert "CORRUPTED_FRAME" in _warnings_of("4.2.5") and "CONFIGURATION_FALLBACK" in _warnings_of("4.2.5")
    assert _warnings_of("4.0.8") == ["CAMERA_REBOOTING"]
    assert "POTENTIAL_CALIBRATION_ISSUE" not in _warnings_of("5.0.0")
    assert "POTENTIAL_CALIBRATION_ISSUE" in _warnings_of("5.1.0")
    _, sl42 = make_pyzed(ZedScript(sdk_version="4.2.5"))
    _, sl40 = make_pyzed(ZedScript(sdk_version="4.0.8"))
    assert hasattr(sl42.RESOLUTION, "HD4K") and hasattr(sl42.RESOLUTION, "QHDPLUS")
    assert not hasattr(sl42.RESOLUTION, "HD1536") and not hasattr(sl40.RESOLUTION, "HD4K")


# -- open ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("version, ordered, warning", CASES, ids=IDS)
def test_a_warning_at_open_is_logged_by_name_and_the_camera_is_used(zed, caplog, version, ordered, warning):
    zed(sdk_version=version, open_status=warning)
    camera = ZedDepthCamera(ZedConfig())
    with caplog.at_level(logging.WARNING, logger="hal.jetson.zed_camera"):
        camera.connect()
    try:
        out = np.zeros(camera.frame_shape, np.float32)
        assert camera.read_into(out) is not None
        np.testing.assert_array_equal(out, 2.0)
        assert camera.session.open_warning == warning
        assert camera.report()["open_warning"] == warning
    finally:
        camera.close()
    assert any(f"opened with warning {warning}" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("version", ["4.2.5", "5.2.0"])
def test_an_error_at_open_still_refuses_the_camera_naming_the_code(zed, version):
    zed(sdk_version=version, open_status="CAMERA_NOT_DETECTED")
    camera = ZedDepthCamera(ZedConfig())
    with pytest.raises(DeviceError, match="did not open: CAMERA_NOT_DETECTED"):
        camera.connect()
    assert not camera.is_connected


# -- grab ------------------------------------------------------------------------------------------

def _stepped_source(sl_ready_session: ZedSession) -> tuple[ZedDepthSource, GrabLoop, np.ndarray]:
    source = ZedDepthSource(sl_ready_session)
    loop = GrabLoop(source, "zed-test", stale_after_ms=200)
    loop.open()
    return source, loop, np.zeros(loop.frame_shape, np.float32)


@pytest.mark.parametrize("version, ordered, warning", CASES, ids=IDS)
def test_a_warning_at_grab(zed, caplog, version, ordered, warning):
    zed(sdk_version=version, grab_statuses=[warning] * 5)
    source, loop, out = _stepped_source(ZedSession(ZedConfig()))
    try:
        with caplog.at_level(logging.WARNING, logger="hal.jetson.zed_camera"):
            for _ in range(6):  # five warnings, then SUCCESS
                assert loop.step()
        health = loop.health()
        assert source.warnings == {warning: 5}
        lines = [r.getMessage() for r in caplog.records if warning in r.getMessage()]
        if warning == "CORRUPTED_FRAME":  # dropped and counted; only the sixth frame is published
            assert (health.frames, health.dropped, source.corrupted_frames) == (1, 5, 5)
            assert health.grab_failures == 0 and loop.backoff_s() == 0.0
        else:  # used, and logged once (rate-limited: 5 in a row give one line)
            assert (health.frames, health.dropped, source.corrupted_frames) == (6, 0, 0)
            assert len(lines) == 1 and "frame used" in lines[0]
        assert loop.read_into(out) is not None
    finally:
        loop.stop()


@pytest.mark.parametrize("version", ["5.0.0", "5.2.0"])
def test_an_error_at_grab_is_a_failed_grab(zed, version):
    zed(sdk_version=version, grab_statuses=["FAILURE"])
    _, loop, _ = _stepped_source(ZedSession(ZedConfig()))
    try:
        assert loop.step()
        health = loop.health()
        assert (health.frames, health.grab_failures) == (0, 1) and "FAILURE" in health.last_error
    finally:
        loop.stop()


def test_corrupted_frames_go_into_the_run_report_camera_section(zed):
    zed(sdk_version="5.0.0", grab_statuses=["CORRUPTED_FRAME"] * 3)
    camera = ZedDepthCamera(ZedConfig())
    camera.connect()  # returns once the first good frame (the fourth grab) is published
    try:
        section = camera_report(camera)["camera"]
    finally:
        camera.close()
    assert section["corrupted_frames"] == 3 and section["warnings"] == {"CORRUPTED_FRAME": 3}
    assert section["health"]["dropped"] == 3 and section["open_warning"] is None
    assert section["device"] == "zed-depth"
    assert camera_report(None) == {}


# -- the IMU ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("version, ordered, warning", CASES, ids=IDS)
def test_a_warning_from_get_sensors_data_keeps_the_sample(zed, version, ordered, warning):
    zed(sdk_version=version, sensors_statuses=[warning], accel_m_s2=(0.0, 0.0, 9.81))
    camera = ZedDepthCamera(ZedConfig())
    imu = ZedImu(camera.session, first_sample_timeout_ms=2000.0)
    imu.connect()
    try:
        sample = imu.read()
        assert imu.warnings() == {warning: 1}
    finally:
        imu.close()
    np.testing.assert_allclose(sample.linear_acceleration_m_s2, [0.0, 0.0, 9.81], atol=1e-12)


# -- the doctor ------------------------------------------------------------------------------------

def test_the_doctor_reports_an_open_warning_as_a_warning(zed):
    zed(sdk_version="5.0.0", open_status="CONFIGURATION_FALLBACK")
    from hal.robot import load_robot

    results = checks.check_zed(0.2, "HD720", 60, "NEURAL", load_robot("go2"))
    line = next(r for r in results if r.name == "ZED camera")
    assert line.status == WARN and "CONFIGURATION_FALLBACK" in line.detail and "--zed-resolution" in line.fix


def test_the_doctor_counts_grab_warnings():
    assert checks.zed_grab_warnings({}, {}) == []
    (line,) = checks.zed_grab_warnings({"CORRUPTED_FRAME": 4}, {"CAMERA_REBOOTING": 1})
    assert line.status == WARN and "depth CORRUPTED_FRAME x4" in line.detail
    assert "IMU CAMERA_REBOOTING x1" in line.detail and "dropped" in line.fix
    assert checks.zed_open_result("ZED2i serial 1", None).status == OK
