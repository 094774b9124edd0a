"""The layer rule, read from the source: who may import whom (issue 18,
docs/architecture.md#layers-who-may-import-whom).

- ``engines`` imports nothing from ``compute``, ``export`` or ``benchmarks``, and from ``hal`` only
  the dependency-free helpers every package may use (optional imports, timing, rate-limited logs).
- The HAL's devices, operator inputs, protocol, transport (with its slots and client), safety,
  simulator, robot description and helpers import nothing from ``compute``, ``engines``, ``export`` or
  ``benchmarks``. Only entry points (``hal.server``), tools and the run log (``hal.recorder``)
  compose the layers.

Every import counts: module level or inside a function, ``import x`` or ``from x import y``,
relative ones resolved, and ``importlib.import_module("x")`` / ``__import__("x")`` with a literal.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

HAL_HELPERS = ("hal.optional", "hal.timing", "hal.log_limit")
POLICY_SIDE = ("compute", "engines", "export", "benchmarks")

HAL_CLEAN = ("hal/devices", "hal/protocol.py", "hal/transport.py", "hal/slots.py", "hal/client",
             "hal/operator", "hal/safety", "hal/sim", "hal/robot.py", "hal/robots", "hal/jetson",
             "hal/backends", "hal/playback", "hal/unitree_dds.py", "hal/toml_compat.py", "hal/config",
             "hal/report",
             *(f"{m.replace('.', '/')}.py" for m in HAL_HELPERS))
# hal/tools (doctor, MCU emulator, sim recorder) may open engines to check a robot's set-up.


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``source``, the module named ``module``."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from pkg import sub`` may import a submodule: count pkg.sub as well as pkg.
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names
                      if alias.name != "*"]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__"):
                found.append((node.lineno, node.args[0].value))
    return found


def _files(*places: str) -> list[Path]:
    files: list[Path] = []
    for place in places:
        path = ROOT / place
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.is_file() else []
    return files


def _violations(files: list[Path], allowed) -> list[str]:
    bad = []
    for path in files:
        module = _module_name(path)
        for line, name in imported_modules(path.read_text(), module, path.name == "__init__.py"):
            if not allowed(name):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    return sorted(set(bad))


def _within(name: str, packages) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def engines_may_import(name: str) -> bool:
    if _within(name, ("compute", "export", "benchmarks")):
        return False
    return not _within(name, ("hal",)) or _within(name, HAL_HELPERS)


def hal_core_may_import(name: str) -> bool:
    return not _within(name, POLICY_SIDE)


def test_engines_know_no_policy_and_no_hal_beyond_its_helpers():
    files = _files("engines")
    assert len(files) >= 8, "the engines package moved: point the test at it"
    assert _violations(files, engines_may_import) == []


def settings_may_import(name: str) -> bool:
    """hal/config and hal/report: dependency-free, so that any layer may declare settings and
    report sections: from hal, only themselves, the helpers and the TOML reader."""
    return not _within(name, ("hal",)) or _within(
        name, ("hal.config", "hal.report", "hal.toml_compat", *HAL_HELPERS))


def test_settings_and_report_schemas_import_no_hal_layer():
    files = _files("hal/config", "hal/report")
    assert len(files) >= 8, "hal/config or hal/report moved: point the test at them"
    assert _violations(files, settings_may_import) == []


def test_the_hal_core_imports_nothing_from_the_policy_side():
    files = _files(*HAL_CLEAN)
    assert len(files) >= 30, "the HAL's packages moved: point the test at them"
    assert _violations(files, hal_core_may_import) == []


@pytest.mark.parametrize("source, module, caught", [
    ("def f():\n    from compute.parkour import checkpoint\n", "engines.torch_engine",
     "compute.parkour.checkpoint"),
    ("from ..compute import x\n", "engines.sub.mod", "engines.compute.x"),
    ("from . import slots\n", "hal.transport", "hal.slots"),
    ("from .. import opener\n", "engines.cuda", "engines.opener"),  # a package's __init__
    ("import importlib\nm = importlib.import_module('export.cli')\n", "hal.sim.world", "export.cli"),
    ("import engines.cuda_memory as cm\n", "hal.slots", "engines.cuda_memory"),
])
def test_the_reader_sees_every_kind_of_import(source, module, caught):
    # Without this the rule tests could pass by reading nothing.
    names = [name for _, name in imported_modules(source, module, module == "engines.cuda")]
    assert caught in names


def test_the_rules_refuse_what_they_should():
    assert not engines_may_import("compute.parkour.checkpoint")
    assert not engines_may_import("hal.robot")
    assert engines_may_import("hal.optional") and engines_may_import("numpy")
    assert not hal_core_may_import("engines.cuda_memory")
    assert hal_core_may_import("hal.devices.base") and hal_core_may_import("zmq")
    assert not settings_may_import("hal.unitree_dds") and not settings_may_import("hal.devices")
    assert settings_may_import("hal.config.fields") and settings_may_import("hal.toml_compat")
