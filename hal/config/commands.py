"""Commands with subcommands (``krabby-keys init|add|revoke|list``), each its own configuration.

Each subcommand is a run configuration like any other (:func:`hal.config.part` of sections), so
its flags come from the same declarations as every other command's; :func:`build_command_parser`
gives each one its parser (with ``--config``) and :func:`parse_command` returns the subcommand's
name with its configuration.
"""

from __future__ import annotations

import argparse
from typing import Any, Mapping, Sequence

from hal.config.parser import add_settings, config_from_args

__all__ = ["build_command_parser", "parse_command"]

COMMAND_DEST = "krabby.command"


def build_command_parser(commands: Mapping[str, tuple[type, str]], *, prog: str,
                         description: str | None = None, epilog: str | None = None,
                         formatter_class: type = argparse.RawDescriptionHelpFormatter,
                         ) -> argparse.ArgumentParser:
    """A parser whose first argument picks a subcommand: ``{name: (run configuration, help)}``.

    The parser's ``config_roots`` maps each subcommand to its configuration (read by
    ``tests/test_cli_flags.py``).
    """
    parser = argparse.ArgumentParser(prog=prog, description=description, epilog=epilog,
                                     formatter_class=formatter_class)
    sub = parser.add_subparsers(dest=COMMAND_DEST, required=True, metavar="{" + ",".join(commands) + "}")
    parser.config_roots = {}  # type: ignore[attr-defined]
    parser.subparsers = {}  # type: ignore[attr-defined]
    for name, (root, help_text) in commands.items():
        child = sub.add_parser(name, help=help_text, description=help_text,
                               formatter_class=formatter_class,
                               argument_default=argparse.SUPPRESS)
        add_settings(child, root)
        parser.config_roots[name] = root  # type: ignore[attr-defined]
        parser.subparsers[name] = child  # type: ignore[attr-defined]
    return parser


def parse_command(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None
                  ) -> tuple[str, Any]:
    """The subcommand's name and its configuration (see :func:`hal.config.parse_config`).

    Raises:
        ConfigError: as parse_config.
    """
    given = vars(parser.parse_args(argv))
    name = given.pop(COMMAND_DEST)
    child = parser.subparsers[name]  # type: ignore[attr-defined]
    return name, config_from_args(parser.config_roots[name], given, child)  # type: ignore[attr-defined]
