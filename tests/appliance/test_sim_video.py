"""``krabby-hal-server-sim --video``: a playable H.264 MP4 with one frame per 1/fps of simulated
time, a contact sheet beside it, and the exit table naming both (offscreen OpenGL: skipped where
neither EGL nor OSMesa works)."""

from __future__ import annotations

import os
import threading

import pytest

from hal.optional import available
from hal.sim.video import VideoConfig, contact_sheet_path

if not (available("av") and available("PIL.Image") and available("mujoco")):
    pytest.skip("--video needs pip install 'krabby[sim,video]'", allow_module_level=True)


def _offscreen_gl_works() -> bool:
    from hal.sim.video import offscreen_gl_context

    result: list[bool] = []

    def probe() -> None:  # on a thread of its own, as the recorder does
        try:
            offscreen_gl_context(32, 32).free()
            result.append(True)
        except Exception:  # noqa: BLE001
            result.append(False)

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join(60)
    return bool(result and result[0])


needs_gl = pytest.mark.skipif(not _offscreen_gl_works(), reason="no offscreen OpenGL (EGL/OSMesa)")


def test_config_checks():
    with pytest.raises(ValueError, match="even number"):
        VideoConfig(width=641)
    with pytest.raises(ValueError, match="fps"):
        VideoConfig(fps=0)
    from pathlib import Path

    assert contact_sheet_path(Path("out/run.mp4")) == Path("out/run_contact.png")


@needs_gl
@pytest.mark.slow
def test_video_has_the_expected_frames_and_a_contact_sheet(exported_policy, tmp_path, capsys):
    import av
    from PIL import Image

    from hal.server.sim.main import main

    video = tmp_path / "run.mp4"
    tag = f"video_{os.getpid()}"
    code = main(["--engine", str(exported_policy), "--fast", "--control-rate", "50",
                 "--latency-budget-ms", "16", "--duration", "3", "--log-level", "WARNING",
                 "--observation-bind", f"inproc://{tag}_obs", "--command-bind",
                 f"inproc://{tag}_cmd", "--estop-bind", "none", "--flight-recorder-s", "0",
                 "--video", str(video), "--video-fps", "20", "--video-size", "160x96"])
    out = capsys.readouterr().out
    assert code == 0
    # Ticks end at 0.02, 0.04, ... 3.00 s of simulated time; frame k is the first at or after
    # k / 20 s: k = 0 .. 60.
    expected = int(3.0 * 20) + 1
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == expected
    assert frames[0].shape == (96, 160, 3)
    assert all(f.std() > 10 for f in frames)  # a scene, not a blank frame
    sheet = Image.open(contact_sheet_path(video))
    assert sheet.size == (4 * 80, 3 * (48 + 20))  # a label line of a 12 px font over each frame
    assert f"video: {video} ({expected} frames at 20 fps), contact sheet " \
           f"{contact_sheet_path(video)}" in out
    assert "sim (from the hand-over at" in out


def test_viewer_without_a_display_is_one_clear_error(exported_policy, monkeypatch, capsys):
    from hal.server.sim.main import main

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    code = main(["--engine", str(exported_policy), "--fast", "--duration", "1", "--viewer",
                 "--estop-bind", "none", "--flight-recorder-s", "0"])
    assert code == 2
    assert "--viewer needs a display" in capsys.readouterr().err
