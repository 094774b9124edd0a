"""Write the reports' JSON Schema files in ``docs/`` from their dataclasses (or check them).

    python -m hal.tools.report_schema            # rewrite docs/*.schema.json
    python -m hal.tools.report_schema --check    # exit 1 when a file differs from its dataclasses

The files are generated, never edited: ``tests/appliance/test_run_report.py`` fails when a
committed file differs from what its dataclasses generate.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from hal.config import build_parser as build_config_parser
from hal.config import parse_cli, part, setting
from hal.report.schema import ReportSection, json_schema

__all__ = ["DOCS", "SCHEMAS", "schema_for", "schema_text", "main", "build_parser"]

log = logging.getLogger(__name__)

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _schemas() -> dict[str, type[ReportSection]]:
    from hal.server.run_report import RunReport
    from hal.sim.go2_report import Go2SimReport

    return {"run-report.schema.json": RunReport, "go2-sim-report.schema.json": Go2SimReport}


SCHEMAS: tuple[str, ...] = ("run-report.schema.json", "go2-sim-report.schema.json")
"""The schema files this tool writes, under ``docs/``."""


def schema_for(name: str) -> dict[str, Any]:
    """The JSON Schema of the schema file ``name`` (one of :data:`SCHEMAS`).

    Raises:
        ValueError: an unknown name (the valid ones named).
    """
    classes = _schemas()
    if name not in classes:
        raise ValueError(f"schema {name!r}: valid: {sorted(classes)}")
    return json_schema(classes[name], name)


def schema_text(name: str) -> str:
    """The file's text: the schema as indented JSON, newline-terminated."""
    return json.dumps(schema_for(name), indent=2) + "\n"


@dataclass(frozen=True)
class SchemaSection:
    """Write the schema files, or check them."""

    section: ClassVar[str] = "report_schema"

    check: bool = setting(False, help="compare the files with their dataclasses instead of "
                                      "writing them")
    docs: Path = setting(DOCS, metavar="DIR", help="where the schema files are")


@dataclass(frozen=True)
class SchemaToolConfig:
    """``python -m hal.tools.report_schema``'s run configuration."""

    schema: SchemaSection = part(SchemaSection)


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(SchemaToolConfig, prog="python -m hal.tools.report_schema",
                               description=__doc__.split("\n\n")[0])


def main(argv: list[str] | None = None) -> int:
    settings = parse_cli(SchemaToolConfig, argv, build_parser()).schema
    stale = []
    for name in SCHEMAS:
        path, text = settings.docs / name, schema_text(name)
        if settings.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.write_text(text)
    if stale:
        sys.stderr.write(f"stale (run python -m hal.tools.report_schema): {', '.join(stale)}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
