"""Every command line the README shows parses with its command's parser (built by hal.config).

The commands are read from the README's ``bash`` blocks: each ``krabby-*`` console script and
``python -m`` entry point, with its flags as printed. They are parsed, not run: a flag renamed,
dropped or given another meaning fails here, naming the line.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import shlex
from pathlib import Path

import pytest

from hal.config import parse_command, parse_config
from hal.toml_compat import tomllib

ROOT = Path(__file__).resolve().parents[1]
HAS_TORCH = importlib.util.find_spec("torch") is not None
NEEDS_TORCH = ("compute.parkour.synthetic", "compute.parkour.checkpoint")


def _scripts() -> dict[str, str]:
    with open(ROOT / "pyproject.toml", "rb") as stream:
        return tomllib.load(stream)["project"]["scripts"]


def _command_lines() -> list[str]:
    """The README's command lines, one per command (``&&``, ``;`` and ``&`` split them)."""
    text = (ROOT / "README.md").read_text()
    found = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s#\s.*$", "", line)  # a trailing comment
            for command in re.split(r"&&|;|&(?=\s|$)", line):
                command = re.sub(r"^\s*\.venv/bin/", "", command).strip()
                command = re.sub(r"\s\[[^\]]*\]", "", command)  # [--optional FLAG] notation
                if command.startswith(("krabby-", "printf ")) or re.match(
                        r"python -m (hal|compute|export|engines|benchmarks)\b", command):
                    found.append(command)
    return found


COMMANDS = _command_lines()


def test_the_readme_has_commands_to_check() -> None:
    assert len([c for c in COMMANDS if c.startswith("krabby-")]) >= 30, COMMANDS


@pytest.mark.parametrize("line", [c for c in COMMANDS if not c.startswith("printf ")])
def test_a_readme_command_parses(line: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for setup in (c for c in COMMANDS if c.startswith("printf ")):  # files the README writes
        _printf, text, _to, name = shlex.split(setup)
        (tmp_path / name).write_text(text.encode().decode("unicode_escape"))
    argv = shlex.split(line)
    if argv[0] == "python":
        module, argv = argv[2], argv[3:]
        if importlib.util.find_spec(module).submodule_search_locations:  # a package
            module += ".__main__"
    else:
        assert argv[0] in _scripts(), f"{argv[0]}: no such console script"
        module, argv = _scripts()[argv[0]].split(":")[0], argv[1:]
    if module in NEEDS_TORCH and not HAS_TORCH:
        pytest.skip(f"{module} imports torch")
    parser = importlib.import_module(module).build_parser()
    if hasattr(parser, "config_roots"):
        assert parse_command(parser, argv)
    else:
        assert parse_config(parser.config_root, argv, parser) is not None
