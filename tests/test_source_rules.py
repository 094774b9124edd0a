"""Rules read from the source: one logger name, the graphs' names written once, comments that point
into this repository, and a test tree that shadows no package (issue 25)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from compute.parkour.graphs import GRAPH_TENSOR_NAMES, GRAPHS
from hal.toml_compat import tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hal", "compute", "export", "engines", "benchmarks")
ARCHITECTURE = ROOT / "docs" / "architecture.md"
#: Built so that this file does not hold the citation it forbids.
OUTSIDE_CITATION = "DESIGN" + " §"
LOGGING_CALLS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "log"}


def _sources(*roots: str) -> list[Path]:
    return sorted(p for root in roots for p in (ROOT / root).rglob("*.py")
                  if "__pycache__" not in p.parts)


def _is_get_logger(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "getLogger" and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "logging")


def logger_problems(source: str, where: str) -> list[str]:
    """Every spelling of a module logger other than ``log = logging.getLogger(__name__)``."""
    tree = ast.parse(source)
    proper = {id(node.value) for node in ast.walk(tree)
              if isinstance(node, ast.Assign) and _is_get_logger(node.value)
              and [ast.unparse(t) for t in node.targets] == ["log"]
              and [ast.unparse(a) for a in node.value.args] == ["__name__"]}
    problems = []
    for node in ast.walk(tree):
        # getLogger() without a name is the root logger, which an entry point may configure
        if _is_get_logger(node) and node.args and id(node) not in proper:
            problems.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in LOGGING_CALLS and isinstance(node.func.value, ast.Name)
              and node.func.value.id == "logging"):
            problems.append(f"{where}:{node.lineno}: logging.{node.func.attr}(...) is the root")
    return problems


def test_the_logger_check_catches_each_other_spelling():
    assert logger_problems("import logging\nlog = logging.getLogger(__name__)\n", "ok") == []
    for bad in ('logger = logging.getLogger(__name__)', 'log = logging.getLogger("hal")',
                'LOG = logging.getLogger(__name__)', 'logging.info("x")',
                'logging.getLogger(__name__).warning("x")'):
        assert logger_problems(f"import logging\n{bad}\n", "bad"), bad


def test_every_module_logs_through_log_named_after_the_module():
    problems = [p for path in _sources(*PACKAGES)
                for p in logger_problems(path.read_text(), str(path.relative_to(ROOT)))]
    assert problems == [], "use log = logging.getLogger(__name__):\n" + "\n".join(problems)


def _docstring_constants(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def name_literals(source: str, names: set[str], where: str) -> list[str]:
    """String constants in code (docstrings aside) that spell one of ``names``."""
    tree = ast.parse(source)
    docs = _docstring_constants(tree)
    return [f"{where}:{node.lineno}: {node.value!r}" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and node.value in names and id(node) not in docs]


def _graph_names() -> set[str]:
    names = set(GRAPHS)
    for inputs, outputs in GRAPH_TENSOR_NAMES.values():
        names.update(inputs, outputs)
    return names


def test_the_name_scan_catches_a_literal_and_spares_docstrings():
    names = _graph_names()
    assert {"actor", "depth", "obs", "depth_latent", "actions", "proprio", "hidden_in",
            "latent_yaw", "hidden_out"} <= names
    assert name_literals('"""obs -> actions."""\nx = {"obs": 1}\n', names, "m") == ["m:2: 'obs'"]


def test_export_and_engines_take_the_graph_and_tensor_names_from_compute_parkour_graphs():
    names = _graph_names()
    problems = [p for path in _sources("export", "engines")
                for p in name_literals(path.read_text(), names, str(path.relative_to(ROOT)))]
    assert problems == [], ("use the names in compute/parkour/graphs.py (engines get them from "
                            "their caller or the manifest):\n" + "\n".join(problems))


def _anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def _cited_files() -> list[Path]:
    files = _sources(*PACKAGES, "tests")
    files += [ROOT / name for name in ("README.md", "PROTOCOL.md", "pyproject.toml", ".ci/run")]
    files += sorted((ROOT / "docs").rglob("*.md"))
    return [f for f in files if f.is_file()]


def test_comments_cite_this_repository_not_an_outside_design_document():
    found = [f"{path.relative_to(ROOT)}:{n}" for path in _cited_files()
             for n, line in enumerate(path.read_text().splitlines(), 1) if OUTSIDE_CITATION in line]
    assert found == [], ("cite a section of docs/architecture.md (the path, # and the anchor) "
                         "instead:\n" + "\n".join(found))


def test_every_cited_section_of_the_architecture_exists():
    anchors = {_anchor(line.lstrip("#")) for line in ARCHITECTURE.read_text().splitlines()
               if line.startswith("#")}
    cited = {(m.group(1), f"{path.relative_to(ROOT)}:{n}")
             for path in _cited_files()
             for n, line in enumerate(path.read_text().splitlines(), 1)
             for m in re.finditer(r"architecture\.md#([\w\-]+)", line)}
    assert len(cited) >= 20, "the comments stopped citing docs/architecture.md: point the test here"
    missing = sorted(f"{where}: #{anchor}" for anchor, where in cited if anchor not in anchors)
    assert missing == [], f"no such section in {ARCHITECTURE.name}:\n" + "\n".join(missing)


def test_no_test_directory_shadows_a_package():
    tests = ROOT / "tests"
    top_level = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert set(PACKAGES) <= top_level
    dirs = [d for d in tests.iterdir() if d.is_dir() and d.name not in ("data", "__pycache__")]
    assert sorted(d.name for d in dirs if d.name in top_level) == []
    # a directory without __init__.py would put tests/ itself on sys.path under pytest's default
    # import mode, and every sibling directory would become a top-level name
    assert sorted(d.name for d in [tests, *dirs] if not (d / "__init__.py").is_file()) == []
    pytest_options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    assert "pythonpath" not in pytest_options["ini_options"]
