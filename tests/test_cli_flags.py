"""Every flag is declared once, with one default, and every entry point builds its parser from it.

Two readings of the same rule (issue 25):

- **(a) the parsers.** Every entry point's ``build_parser()`` is built by :mod:`hal.config`; across
  all of them a flag spelling maps to one setting with one default. A command whose job needs
  another default says so with ``part(Section, defaults=...)``, and another spelling with
  ``part(Section, flags=...)``: both are listed here, so none is added by accident.
- **(b) the source.** Read with ``ast``: outside ``hal/config`` no ``add_argument("--...")``
  remains in hal, compute, export, engines or benchmarks, and each flag spelling is declared in
  exactly one ``setting(...)`` (or ``part(flags=...)``).
"""

from __future__ import annotations

import ast
import collections
import dataclasses
import importlib
import importlib.util
from pathlib import Path
from typing import Any

import pytest

from hal.config import iter_settings, part_of
from hal.optional import MissingDependencyError
from hal.toml_compat import tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hal", "compute", "export", "engines", "benchmarks")

# Entry points run with ``python -m`` (no console script), whose parsers follow the same rule.
MODULE_ENTRY_POINTS = (
    "compute.parkour.checkpoint", "hal.tools.mcu_emulator", "hal.tools.record_sim", "hal.sim.__main__",
    "hal.live.snapshot", "benchmarks.ab", "benchmarks.bench_depth_preprocess",
    "benchmarks.cuda_paths", "benchmarks.engine_step", "benchmarks.eval_throughput",
    "benchmarks.flood", "benchmarks.gait_drift", "benchmarks.gil_grab", "benchmarks.go2_dds",
    "benchmarks.landing_clamp", "benchmarks.live_appliance", "benchmarks.live_cost",
    "benchmarks.recorder_cost", "benchmarks.sim_step", "benchmarks.soak", "hal.tools.report_schema",
)

# A command's own defaults (part(defaults=...)): (command, flag) -> default.
COMMAND_DEFAULTS: dict[tuple[str, str], Any] = {
    ("krabby-hal-server-jetson", "--device"): "cuda",  # the Jetson infers on its GPU
    ("krabby-hal-server-sim", "--episode-s"): None,  # a run ends by --duration or its goals
    ("krabby-hal-doctor", "--seconds"): 2.0,
    ("krabby-eval", "--speed"): 1.0,
    ("krabby-eval", "--report"): "eval.json",
    ("krabby-eval", "--log-level"): "WARNING",
    ("krabby-replay", "--robot"): None,  # the robot named in the log
    ("krabby-replay", "--log-level"): "WARNING",
    ("krabby-build-engine", "--parity-samples"): 16,
    ("krabby-teleop", "--speed"): None,  # send no speed: the robot keeps its own
    ("krabby-teleop", "--mode"): None,
    ("krabby-bench", "--out"): "bench-results",
    ("python -m benchmarks.ab", "--out"): "bench-ab",
    ("python -m benchmarks.ab", "--seconds"): 20.0,
    ("python -m benchmarks.engine_step", "--out"): "bench-results",
    ("python -m benchmarks.eval_throughput", "--episodes"): 5,
    ("python -m benchmarks.gait_drift", "--duration"): 10.0,  # TrotGait.duration_s
    ("python -m benchmarks.gil_grab", "--seconds"): 5.0,
    ("python -m benchmarks.go2_dds", "--out"): "bench-results",
    ("python -m benchmarks.go2_dds", "--seconds"): 20.0,
    ("python -m benchmarks.live_appliance", "--seconds"): 8.0,
    ("python -m hal.live.snapshot", "--out"): "live_view.png",
    ("python -m hal.tools.mcu_emulator", "--robot"): None,  # 12 joints at zero
    ("python -m hal.tools.mcu_emulator", "--rate-hz"): 500.0,
    ("python -m hal.tools.record_sim", "--scene"): "parkour",
}

# A command's own spelling of a shared setting (part(flags=...)): (command, section.field) -> flag.
COMMAND_SPELLINGS = {
    ("krabby-teleop", "KeysSection.keys"): "--key-dir",
}

# One spelling, two settings: kept because a README command uses both meanings.
# krabby-teleop's --keys is its interactive switch (README: krabby-teleop ... --key-dir DIR --keys);
# everywhere else --keys is the key directory (hal.config.sections.KeysSection).
SPELLING_CONFLICTS = {"--keys": 2}


def _scripts() -> dict[str, str]:
    with open(ROOT / "pyproject.toml", "rb") as stream:
        return tomllib.load(stream)["project"]["scripts"]


def _entry_points() -> list[tuple[str, str]]:
    """(command, module) of every console script and ``python -m`` entry point."""
    found = [(name, target.split(":")[0]) for name, target in _scripts().items()]
    return found + [(f"python -m {m.removesuffix('.__main__')}", m) for m in MODULE_ENTRY_POINTS]


def _roots(module_name: str) -> list[tuple[str, Any]]:
    """(subcommand or "", run configuration) of a module's parser."""
    parser = importlib.import_module(module_name).build_parser()
    roots = getattr(parser, "config_roots", None)
    if roots is not None:
        return list(roots.items())
    root = getattr(parser, "config_root", None)
    assert root is not None, f"{module_name}.build_parser() is not built by hal.config"
    return [("", root)]


def _needs_torch(module_name: str) -> bool:
    """Whether the module cannot be imported here for want of torch (the export commands on the
    robot's Python 3.10, whose extras have no torch): its parser is checked in the 3.11 run."""
    if importlib.util.find_spec("torch") is not None:
        return False
    try:
        importlib.import_module(module_name)
    except MissingDependencyError as exc:
        return "torch" in str(exc)
    return False


def _params():
    for command, module in _entry_points():
        marks = [pytest.mark.torch] if _needs_torch(module) else []
        yield pytest.param(command, module, marks=marks, id=command)


@pytest.mark.parametrize(("command", "module"), list(_params()))
def test_entry_point_parser_is_built_from_the_settings(command: str, module: str) -> None:
    assert _roots(module)


def _flag_table() -> list[dict[str, Any]]:
    """One row per (command, flag): the setting behind it and this command's default."""
    rows = []
    for command, module in _entry_points():
        if _needs_torch(module):
            continue  # checked in the run with torch (the robot's Python 3.10 extras have none)
        for sub, root in _roots(module):
            for name, section, field, declared, flag in iter_settings(root):
                if declared.positional or not declared.cli:
                    continue
                how = part_of(root, name)
                field_default = (field.default if field.default is not dataclasses.MISSING
                                 else field.default_factory())  # type: ignore[misc]
                default = dict(how.defaults).get(field.name, field_default)
                rows.append({"command": f"{command} {sub}".strip(), "flag": flag,
                             "aliases": declared.aliases + (
                                 (declared.flag,) if declared.negate and declared.flag else ()),
                             "setting": dataclasses.replace(declared, repeat=False),
                             "where": f"{section.__name__}.{field.name}",
                             "field_default": field_default, "default": default,
                             "respelled": dict(how.flags).get(field.name)})
    return rows


def _none_if_empty(value: Any) -> Any:
    return None if value in ([], ()) else value


def test_a_flag_spelling_is_one_setting_across_commands() -> None:
    by_spelling: dict[str, set] = collections.defaultdict(set)
    for row in _flag_table():
        for spelling in (row["flag"], *row["aliases"]):
            by_spelling[spelling].add(row["setting"])
    conflicts = {flag: len(s) for flag, s in by_spelling.items() if len(s) > 1}
    assert conflicts == SPELLING_CONFLICTS


def test_a_setting_has_one_default_but_the_listed_command_defaults() -> None:
    overrides, field_defaults = {}, collections.defaultdict(set)
    for row in _flag_table():
        field_defaults[row["setting"]].add(repr(_none_if_empty(row["field_default"])))
        if row["default"] != row["field_default"]:
            overrides[(row["command"], row["flag"])] = row["default"]
    assert overrides == COMMAND_DEFAULTS
    # a setting reused with like= (krabby-eval's repeatable --engine) keeps its default (none)
    assert {s.flag or s.help: d for s, d in field_defaults.items() if len(d) > 1} == {}


def test_a_command_respells_only_the_listed_settings() -> None:
    respelled = {(row["command"], row["where"]): row["respelled"]
                 for row in _flag_table() if row["respelled"]}
    assert respelled == COMMAND_SPELLINGS


# ---------------------------------------------------------------- (b) counted in the source

def _sources() -> list[Path]:
    files = []
    for package in PACKAGES:
        files += sorted((ROOT / package).rglob("*.py"))
    return files


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _add_argument_flags(tree: ast.AST) -> list[str]:
    return [arg.value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "add_argument"
            for arg in node.args
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
            and arg.value.startswith("--")]


def _callee(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _keyword(node: ast.Call, name: str) -> Any:
    for keyword in node.keywords:
        if keyword.arg == name:
            return ast.literal_eval(keyword.value)
    return None


def _setting_spellings(tree: ast.AST) -> list[str]:
    """The flag spellings declared by ``setting(...)``, ``Setting(...)`` and ``part(flags=...)``."""
    field_of = {id(node.value): node.target.id for node in ast.walk(tree)
                if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and node.value is not None}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _callee(node)
        if name == "part":
            found += list((_keyword(node, "flags") or {}).values())
        if name not in ("setting", "Setting") or _keyword(node, "positional"):
            continue
        flag = _keyword(node, "negate") or _keyword(node, "flag")
        if _keyword(node, "negate") and _keyword(node, "flag"):
            found.append(_keyword(node, "flag"))  # a three-state switch: --x and --no-x
        if flag is None and any(k.arg == "like" for k in node.keywords):
            continue  # reuses a Setting declared (and counted) elsewhere
        if flag is None and id(node) in field_of:
            flag = "--" + field_of[id(node)].replace("_", "-")
        if flag is not None:
            found.append(flag)
        found += list(_keyword(node, "aliases") or ())
    return found


def _file_params():
    for path in _sources():
        if _rel(path).startswith("hal/config/"):
            continue
        if _add_argument_flags(ast.parse(path.read_text())):
            yield pytest.param(_rel(path), id=_rel(path))
    yield pytest.param(None, id="every-other-file")


@pytest.mark.parametrize("relative", list(_file_params()))
def test_b_no_add_argument_outside_hal_config(relative: str | None) -> None:
    files = [ROOT / relative] if relative else [
        p for p in _sources() if not _rel(p).startswith("hal/config/")]
    left = {_rel(p): _add_argument_flags(ast.parse(p.read_text())) for p in files}
    assert {k: v for k, v in left.items() if v} == {}


def test_b_each_flag_spelling_declared_in_exactly_one_setting() -> None:
    count: collections.Counter[str] = collections.Counter()
    where = collections.defaultdict(list)
    for path in _sources():
        tree = ast.parse(path.read_text())
        for flag in _setting_spellings(tree) + _add_argument_flags(tree):
            count[flag] += 1
            where[flag].append(_rel(path))
    assert count, "no setting found: the ast reading is broken"
    assert {f: where[f] for f, n in count.items() if n > 1 and SPELLING_CONFLICTS.get(f) != n} == {}


def test_b_the_source_reading_sees_every_flag_of_the_parsers() -> None:
    """The ast count and the parsers agree: no setting is declared in a way the count misses."""
    declared = set()
    for path in _sources():
        declared.update(_setting_spellings(ast.parse(path.read_text())))
    offered = {s for row in _flag_table() for s in (row["flag"], *row["aliases"])}
    assert offered - declared == set()
