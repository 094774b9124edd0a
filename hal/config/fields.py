"""A setting is declared once: a dataclass field that carries its flag, help and parser.

Every entry point builds its command line from the same dataclasses (:mod:`hal.config.parser`),
so a flag has one spelling, one default (the field's) and one validation (the dataclass's
``__post_init__``). A section is a dataclass with a ``section`` class variable: the TOML table of
``--config FILE`` and the title of its group in ``--help``::

    @dataclass(frozen=True)
    class LoopConfig:
        section: ClassVar[str] = "loop"

        control_rate_hz: float = setting(100.0, flag="--control-rate", aliases=("--control_rate",),
                                         help="control loop rate, Hz")
"""

from __future__ import annotations

import dataclasses
from dataclasses import MISSING, dataclass
from typing import Any, Callable, Iterable, Union

__all__ = ["Setting", "setting", "setting_of", "SETTING_KEY"]

SETTING_KEY = "krabby.setting"

Choices = Union[tuple, Callable[[], Iterable[str]], None]


@dataclass(frozen=True)
class Setting:
    """How one field appears on the command line and in a config file.

    Attributes:
        help: The ``--help`` text; the default is appended to it.
        flag: The flag's spelling; by default ``--`` and the field name with dashes.
        aliases: Other accepted spellings (the seed README's underscore forms).
        choices: The valid values, or a callable that returns them when the parser is built (a
            backend registry, so a backend registered later is still a valid choice).
        metavar: The value's name in ``--help``.
        parse: Turns the flag's text into the value; by default the field's type does.
        negate: For a boolean that defaults to True: the flag that sets it False
            (``--no-keyboard``). A boolean that defaults to False is a switch (``flag``). With
            both ``flag`` and ``negate``, an optional boolean has three states: ``flag`` sets
            True, ``negate`` False, and neither leaves the default (None: the command decides).
        repeat: A list field whose flag may be given several times (``--fault A --fault B``).
        env: An environment variable that supplies the value when neither the command line nor
            the config file does (``$KRABBY_KEYS``).
        cli: False for a setting held in config files only.
        positional: An argument given by position, not by flag (``krabby-replay LOG``); shown
            as ``metavar`` (by default the field name in capitals).
        nargs: argparse's ``nargs`` for a positional (``"?"``) or a list flag (``"+"``).
        const: With ``nargs="?"`` on a flag: the value when the flag is given bare
            (``--ray`` alone is a local Ray instance).
    """

    help: str
    flag: str | None = None
    aliases: tuple[str, ...] = ()
    choices: Choices = None
    metavar: str | None = None
    parse: Callable[[str], Any] | None = None
    negate: str | None = None
    repeat: bool = False
    env: str | None = None
    cli: bool = True
    positional: bool = False
    nargs: str | None = None
    const: Any = None

    def spelling(self, field_name: str, prefix: str = "") -> str:
        """The flag as typed: the explicit one, else ``--[prefix-]field-name``.

        A positional has no flag: its spelling is its metavar (``LOG``).
        """
        if self.positional:
            return self.metavar or field_name.upper()
        if self.negate is not None:
            return self.negate
        if self.flag is not None:
            return self.flag
        stem = f"{prefix}_{field_name}" if prefix else field_name
        return "--" + stem.replace("_", "-")

    def valid_choices(self) -> tuple | None:
        if self.choices is None:
            return None
        return tuple(self.choices() if callable(self.choices) else self.choices)


def setting(default: Any = MISSING, *, help: str | None = None, default_factory: Any = MISSING,
            like: Setting | None = None, **options: Any) -> Any:
    """A dataclass field declared as a setting (see :class:`Setting` for ``options``).

    ``like`` reuses a module-level :class:`Setting` (its flag, help, choices) for a second field
    of another type: ``krabby-eval``'s repeatable ``--engine`` is the policy's ``--engine``,
    declared once, with ``repeat=True``.
    """
    if like is not None:
        if help is not None:
            raise TypeError("setting(like=...): the help is the shared Setting's")
        declared = dataclasses.replace(like, **options)
    elif help is None:
        raise TypeError("setting(): help= is required")
    else:
        declared = Setting(help=help, **options)
    metadata = {SETTING_KEY: declared}
    if default_factory is not MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def setting_of(field: dataclasses.Field) -> Setting | None:
    """The field's :class:`Setting`, or None for a field that is no setting."""
    return field.metadata.get(SETTING_KEY)
