"""Settings declared once, as dataclass fields; command lines and config files built from them.

:mod:`hal.config.fields` declares (``setting``); :mod:`hal.config.parser` builds the parser and
reads ``--config FILE.toml`` (its values checked by :mod:`hal.config.values`);
:mod:`hal.config.commands` does the same for each subcommand of a command that has them
(``krabby-keys init|add|revoke|list``). Dependency-free: any layer's config dataclass may declare
settings.
"""

from hal.config.commands import build_command_parser, parse_command
from hal.config.fields import Setting, setting, setting_of
from hal.config.parser import (
    CONFIG_FLAG,
    ConfigError,
    Part,
    add_settings,
    build_parser,
    config_from_args,
    config_to_dict,
    iter_settings,
    parse_cli,
    parse_config,
    part,
    part_of,
    section_fields,
)

__all__ = ["Setting", "setting", "setting_of", "ConfigError", "Part", "part", "part_of", "build_parser",
           "parse_config", "config_to_dict", "iter_settings", "section_fields", "CONFIG_FLAG",
           "add_settings", "config_from_args", "build_command_parser", "parse_command", "parse_cli"]
