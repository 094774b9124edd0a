"""Command lines and config files built from the settings' dataclasses.

A run's configuration is a dataclass whose fields are sections (:func:`part`); each section is a
dataclass of settings (:func:`hal.config.fields.setting`). :func:`build_parser` turns it into an
``argparse`` parser and :func:`parse_config` into the configuration, in this order of precedence:
the command line, then ``--config FILE`` (a TOML file with one table per section, keyed by field
name), then the environment variable a setting names, then the field's default. The sections'
``__post_init__`` check the values; their ``ValueError`` becomes a :class:`ConfigError`.

The CLI is built by this one helper over the dataclasses rather than by a generator such as
draccus: the flags keep the spellings the seed README documents (``--control_rate``,
``--action_dim``), a backend registry supplies choices when the parser is built, and the Jetson
gets no new dependency.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import os
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from hal.config.fields import Setting, setting_of
from hal.config.values import ConfigError, coerce, read_config_file, strip_optional

__all__ = ["ConfigError", "Part", "part", "build_parser", "parse_config", "config_to_dict",
           "iter_settings", "section_fields", "part_of", "CONFIG_FLAG", "add_settings",
           "config_from_args", "parse_cli"]

PART_KEY = "krabby.part"
CONFIG_FLAG = "--config"


@dataclass(frozen=True)
class Part:
    """How a section joins a run's configuration.

    Attributes:
        only: The section's fields this entry point offers (None: all of them).
        prefix: Put before the field names of settings without an explicit flag
            (``zed`` gives ``--zed-resolution``).
        defaults: This command's own defaults for some fields, where its job differs (the
            Jetson infers on ``cuda``, the simulator on ``cpu``); listed, and checked by
            ``tests/test_cli_flags.py``, so that no default is written twice by accident.
        required: Fields this command cannot run without (``krabby-eval --engine``); checked
            after the config file is read, so a config file may supply them.
        flags: This command's own spelling of a field's flag, where the shared spelling means
            something else here (``krabby-teleop``'s ``--keys`` is its interactive switch, so
            its key directory is ``--key-dir``); listed, and checked by the same test.
        env: False where this command reads none of the section's settings from the
            environment (``krabby-estop``: an e-stop goes out as its command line says, whatever
            the shell's ``$KRABBY_KEYS`` holds).
    """

    only: tuple[str, ...] | None = None
    prefix: str = ""
    defaults: tuple[tuple[str, Any], ...] = ()
    required: tuple[str, ...] = ()
    flags: tuple[tuple[str, str], ...] = ()
    env: bool = True


def part(section: type, *, only: Sequence[str] | None = None, prefix: str = "",
         defaults: dict[str, Any] | None = None, required: Sequence[str] = (),
         flags: dict[str, str] | None = None, env: bool = True) -> Any:
    """A run configuration's field holding ``section`` (its defaults unless configured)."""
    how = Part(tuple(only) if only else None, prefix, tuple((defaults or {}).items()),
               tuple(required), tuple((flags or {}).items()), env)
    named = {name for name, _ in how.defaults} | set(how.required) | {n for n, _ in how.flags}
    unknown = named - {f.name for f in dataclasses.fields(section)}
    if unknown:
        raise TypeError(f"part({section.__name__}): no field {sorted(unknown)}")
    return dataclasses.field(default_factory=lambda: section(**dict(how.defaults)),
                             metadata={PART_KEY: how, "krabby.section": section})


def section_fields(section: type, only: Sequence[str] | None = None
                   ) -> Iterator[tuple[dataclasses.Field, Setting]]:
    """The section's settings as (field, setting), in declaration order."""
    for field in dataclasses.fields(section):
        declared = setting_of(field)
        if declared is not None and (only is None or field.name in only):
            yield field, declared


def iter_settings(root: type) -> Iterator[tuple[str, type, dataclasses.Field, Setting, str]]:
    """Every setting of a run configuration: (part name, section, field, setting, flag)."""
    for holder in dataclasses.fields(root):
        how: Part = holder.metadata.get(PART_KEY, Part())
        section = holder.metadata.get("krabby.section", holder.default_factory)
        respelled = dict(how.flags)
        for field, declared in section_fields(section, how.only):
            flag = respelled.get(field.name) or declared.spelling(field.name, how.prefix)
            yield holder.name, section, field, declared, flag


def _field_types(section: type) -> dict[str, Any]:
    return typing.get_type_hints(section)


def _converter(kind: Any, declared: Setting):
    """str -> value for a flag of type ``kind``."""
    if declared.parse is not None:
        return declared.parse
    kind = strip_optional(kind)
    origin = typing.get_origin(kind)
    if origin is tuple:
        item = typing.get_args(kind)[0] if typing.get_args(kind) else str
        return lambda text: tuple(item(v) for v in text.split(","))
    if origin is list:
        args = typing.get_args(kind)
        return args[0] if args else str
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return kind
    if kind in (int, float, str, Path):
        return kind
    return str


def part_of(root: type, name: str) -> Part:
    """How the section ``name`` joins ``root``."""
    return next(f for f in dataclasses.fields(root) if f.name == name).metadata.get(PART_KEY, Part())


def _default_text(field: dataclasses.Field, overrides: dict[str, Any]) -> str:
    if field.name in overrides:
        value = overrides[field.name]
    elif field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        value = field.default_factory()  # type: ignore[misc]
    else:
        return ""
    if value is None or value in ([], "") or isinstance(value, bool):
        return ""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, tuple):
        value = ",".join(map(str, value))
    return f" (default {value})"


def build_parser(root: type, *, prog: str, description: str | None = None,
                 epilog: str | None = None,
                 formatter_class: type = argparse.RawDescriptionHelpFormatter,
                 ) -> argparse.ArgumentParser:
    """The parser of a run configuration: one group per section, one flag per setting.

    Nothing has an argparse default (``SUPPRESS``): :func:`parse_config` sees what the command
    line gave, so a config file's value is kept unless the command line overrides it.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description, epilog=epilog,
                                     formatter_class=formatter_class,
                                     argument_default=argparse.SUPPRESS)
    add_settings(parser, root)
    return parser


def add_settings(parser: argparse.ArgumentParser, root: type) -> None:
    """Give ``parser`` (a new parser, or a subcommand's) ``--config`` and ``root``'s settings."""
    parser.config_root = root  # type: ignore[attr-defined] # read by tests/test_cli_flags.py
    parser.add_argument(CONFIG_FLAG, metavar="FILE.toml",
                        help="read settings from this TOML file (one table per section, keyed "
                             "by the names in the run report's 'config'); flags override it")
    groups: dict[str, argparse._ArgumentGroup] = {}
    for name, section, field, declared, flag in iter_settings(root):
        if not declared.cli:
            continue
        title = getattr(section, "title", None) or getattr(section, "section", name)
        group = groups.get(name)
        if group is None:
            group = groups[name] = parser.add_argument_group(title)
        dest = f"{name}.{field.name}"
        spellings = [flag, *declared.aliases]
        how = part_of(root, name)
        help_text = declared.help + _default_text(field, dict(how.defaults))
        if field.name in how.required:  # checked after --config is read, so not argparse's
            help_text += " (required)"
        if declared.env and how.env:
            help_text += f" (or ${declared.env})"
        kind = _field_types(section)[field.name]
        if declared.positional:
            _add_positional(group, dest, flag, declared, _converter(kind, declared), help_text)
            continue
        if strip_optional(kind) is bool:
            if declared.negate is not None and declared.flag is not None:
                # Three states: --x sets True, --no-x False, neither leaves the default (None:
                # the command decides, e.g. randomise on training terrains only).
                both = group.add_mutually_exclusive_group()
                both.add_argument(declared.flag, *declared.aliases, dest=dest,
                                  action="store_const", const=True, help=help_text)
                both.add_argument(declared.negate, dest=dest, action="store_const", const=False,
                                  help=f"not {declared.flag}")
            elif declared.negate is not None:
                group.add_argument(*spellings, dest=dest, action="store_false", help=help_text)
            elif field.default is True:
                raise TypeError(f"{section.__name__}.{field.name}: a boolean that defaults to "
                                "True needs negate='--no-...'")
            else:
                group.add_argument(*spellings, dest=dest, action="store_true", help=help_text)
            continue
        options: dict[str, Any] = {"dest": dest, "help": help_text,
                                   "type": _converter(kind, declared)}
        choices = declared.valid_choices()
        if declared.metavar or choices is None:  # else argparse shows {a,b,c}
            options["metavar"] = declared.metavar or field.name.upper()
        if choices is not None:
            options["choices"] = choices
        if declared.repeat:
            options["action"] = "append"
            options["help"] += " (repeatable)"
        if declared.nargs is not None:
            options["nargs"] = declared.nargs
            if declared.nargs == "?":
                options["const"] = declared.const
        group.add_argument(*spellings, **options)


def _add_positional(group: Any, dest: str, metavar: str, declared: Setting, convert: Any,
                    help_text: str) -> None:
    # An absent optional positional is None, not SUPPRESS: argparse would check the text
    # '==SUPPRESS==' against the choices. parse_config reads None as "not given".
    options: dict[str, Any] = {"metavar": metavar, "help": help_text, "type": convert,
                               "default": None}
    if declared.nargs is not None:
        options["nargs"] = declared.nargs
    choices = declared.valid_choices()
    if choices is not None:
        options["choices"] = choices
        options["metavar"] = None  # argparse shows {A,B,C}
    group.add_argument(dest, **options)


def parse_config(root: type, argv: Sequence[str] | None = None,
                 parser: argparse.ArgumentParser | None = None,
                 environ: typing.Mapping[str, str] | None = None) -> Any:
    """The run configuration the command line (and ``--config``) describe.

    Raises:
        ConfigError: an unknown section or key in the config file, a value of the wrong type, or
            a value a section's own check refuses; the message names the setting.
    """
    parser = parser or build_parser(root, prog="krabby")
    return config_from_args(root, vars(parser.parse_args(argv)), parser, environ)


def config_from_args(root: type, given: dict[str, Any], parser: argparse.ArgumentParser,
                     environ: typing.Mapping[str, str] | None = None) -> Any:
    """The run configuration from parsed arguments (``vars(namespace)``); see parse_config."""
    given = {k: v for k, v in given.items() if v is not None or "." not in k}
    environ = os.environ if environ is None else environ
    path = given.pop("config", None)
    from_file = read_config_file(path) if path else {}
    offered: dict[str, dict[str, tuple[type, dataclasses.Field, Setting, str]]] = {}
    for name, section, field, declared, flag in iter_settings(root):
        offered.setdefault(name, {})[field.name] = (section, field, declared, flag)
    for table, values in from_file.items():
        if table not in offered:
            raise ConfigError(f"--config {path}: unknown section [{table}]; this command has "
                              f"{sorted(offered)}")
        if not isinstance(values, dict):
            raise ConfigError(f"--config {path}: [{table}] must be a table of settings")
        unknown = sorted(set(values) - set(offered[table]))
        if unknown:
            raise ConfigError(f"--config {path}: [{table}] has no setting {unknown}; valid are "
                              f"{sorted(offered[table])}")
    parts: dict[str, Any] = {}
    for holder in dataclasses.fields(root):
        how: Part = holder.metadata.get(PART_KEY, Part())
        values: dict[str, Any] = {}
        for field_name, (section, field, declared, flag) in offered.get(holder.name, {}).items():
            kind = _field_types(section)[field_name]
            dest = f"{holder.name}.{field_name}"
            if dest in given:
                values[field_name] = given[dest]
            elif field_name in from_file.get(holder.name, {}):
                where = f"--config {path}: [{holder.name}] {field_name}"
                value = from_file[holder.name][field_name]
                if declared.parse is not None and isinstance(value, str):
                    # The flag's own reading of its text (``--log-level warning``), in a file too.
                    try:
                        value = declared.parse(value)
                    except (TypeError, ValueError, argparse.ArgumentTypeError) as exc:
                        raise ConfigError(f"{where} = {value!r}: {exc}") from None
                value = coerce(value, kind, where)
                choices = declared.valid_choices()
                items = value if isinstance(value, list) else [value]  # --cases A B: each one
                if choices is not None and any(item not in choices for item in items):
                    raise ConfigError(f"--config {path}: [{holder.name}] {field_name} = "
                                      f"{value!r}: valid are {list(choices)}")
                values[field_name] = value
            elif declared.env and how.env and environ.get(declared.env):
                values[field_name] = coerce(environ[declared.env], kind, f"${declared.env}")
        section = holder.metadata.get("krabby.section", holder.default_factory)
        missing = [offered[holder.name][f][3] for f in how.required
                   if f not in values and f in offered.get(holder.name, {})]
        if missing:
            parser.error(f"the following arguments are required: {', '.join(missing)}")
        try:
            parts[holder.name] = section(**{**dict(how.defaults), **values})
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    try:
        return root(**parts)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def parse_cli(root: type, argv: Sequence[str] | None, parser: argparse.ArgumentParser) -> Any:
    """:func:`parse_config` for an entry point: a :class:`ConfigError` exits 2 with its message
    (argparse's usage error), as a bad flag does."""
    try:
        return parse_config(root, argv, parser)
    except ConfigError as exc:
        parser.error(str(exc))


def config_to_dict(config: Any, only: Sequence[str] | None = None) -> Any:
    """A configuration as JSON-ready data (the run report's ``config``; ``--config`` reads it).

    A section holds the settings its command offers (``part(only=...)``), so the result fed back
    as ``--config`` is accepted by the same command.
    """
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        out = {}
        for f in dataclasses.fields(config):
            how = f.metadata.get(PART_KEY)
            if how is not None:
                out[f.name] = config_to_dict(getattr(config, f.name), how.only)
            elif setting_of(f) is not None and (only is None or f.name in only):
                out[f.name] = config_to_dict(getattr(config, f.name))
        return out
    if isinstance(config, enum.Enum):
        return config.value
    if isinstance(config, Path):
        return str(config)
    if isinstance(config, (list, tuple)):
        return [config_to_dict(v) for v in config]
    if isinstance(config, dict):
        return {str(k): config_to_dict(v) for k, v in config.items()}
    return config
