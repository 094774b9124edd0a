"""Flight recorder and replay: every run can leave a log a user can open, and replay reproduces it.

- :class:`RecordingSession` — what the appliance's ``--record`` / ``--flight-recorder-s`` flags
  build: a :class:`RecorderTap` on the HAL server and the inference client feeding a
  :class:`FileRecorder` (every record, MCAP, off the control path) and a :class:`FlightRecorder`
  (the last N seconds in memory, dumped on a fault or on request).
- :func:`read_log` — a log back as tables; damage raises :class:`LogFormatError` with the offset.
- :func:`replay_log` / ``krabby-replay`` — the recorded inputs through an engine, compared.

The log format (channels, schemas) is described in ``hal/recorder/README.md``.
"""

from hal.recorder.appliance import RecordingSession
from hal.recorder.capture import RecordLayouts, RecorderTap, layouts_for
from hal.recorder.file_recorder import FileRecorder, FileRecorderConfig
from hal.recorder.flight import FlightRecorder, FlightRecorderConfig
from hal.recorder.reader import LogFormatError, RecordedLog, RecordTable, read_log
from hal.recorder.replay import ReplayResult, replay_log

__all__ = [
    "RecordingSession", "RecordLayouts", "RecorderTap", "layouts_for",
    "FileRecorder", "FileRecorderConfig", "FlightRecorder", "FlightRecorderConfig",
    "LogFormatError", "RecordedLog", "RecordTable", "read_log", "ReplayResult", "replay_log",
]
