"""The run report as typed, versioned dataclasses (``run.json``, ``krabby-go2-sim --report``).

:mod:`hal.report.schema` is the machinery (to/from JSON, the JSON Schema generator, the
version), :mod:`hal.report.server` the HAL server's part, :mod:`hal.report.sections` the
listeners'. The appliance's whole report, with the policy's sections, is
:class:`hal.server.run_report.RunReport`; the schema file is ``docs/run-report.schema.json``.
"""

from hal.report.schema import (
    REPORT_VERSION,
    ReportFormatError,
    ReportSection,
    VersionedReport,
    json_schema,
)

__all__ = ["REPORT_VERSION", "ReportFormatError", "ReportSection", "VersionedReport",
           "json_schema"]
