"""``krabby-eval``: a policy scored through the simulated appliance, per terrain × difficulty.

:mod:`hal.eval.episode` runs one episode (the HAL server, safety layer, inference client and
MuJoCo world of ``krabby-hal-server-sim --fast``); :mod:`hal.eval.runners` runs many in a local
process pool or on Ray; :mod:`hal.eval.summary` turns episodes into the report's cells;
:mod:`hal.eval.cli` is the command.
"""

from __future__ import annotations

__all__: list[str] = []
