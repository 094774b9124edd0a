"""The code runs on the oldest Python krabby supports (3.10: JetPack 6's Ubuntu 22.04).

A static check with ``vermin`` (the ``[test]`` extra) over every package and the tests: no module,
member, syntax or keyword newer than ``requires-python`` allows. CI also runs the suite under
Python 3.10 (``.ci/run``); this check names the offending line even where no test imports it.
The second test feeds the same check constructs that need 3.11, so a check that has stopped
looking fails too.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from hal.toml_compat import tomllib

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ("hal", "compute", "export", "engines", "benchmarks", "tests")


def _minimum_python() -> str:
    """The lower bound of pyproject.toml's ``requires-python`` (``">=3.10"`` -> ``"3.10"``)."""
    spec = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    (lower,) = [s.version for s in SpecifierSet(spec) if s.operator == ">="]
    return lower


def _vermin(*paths: str | Path) -> subprocess.CompletedProcess:
    # --eval-annotations: annotations are strings under `from __future__ import annotations`,
    # but `-> Self` still needs typing.Self at run time wherever the annotation is evaluated.
    return subprocess.run(
        # vermin has no __main__: call its console script's function.
        [sys.executable, "-c", "import sys, vermin; sys.exit(vermin.main())", f"--target={_minimum_python()}-", "--violations",
         "--eval-annotations", "--no-tips", "--no-make-paths-absolute", *map(str, paths)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)


def _rejected(result: subprocess.CompletedProcess) -> bool:
    # vermin parses with the running interpreter and exits 0 on a file it cannot parse (it then
    # says "invalid syntax"): under 3.10 that is what `except*` gives, so it counts as rejected.
    return result.returncode != 0 or "invalid syntax" in result.stdout


def test_requires_python_is_3_10():
    # JetPack 6 is Ubuntu 22.04, whose Python is 3.10; the README promises it.
    assert _minimum_python() == "3.10"


def test_no_construct_newer_than_requires_python():
    result = _vermin(*CHECKED)
    assert not _rejected(result), (
        f"code that needs a newer Python than {_minimum_python()} (vermin):\n{result.stdout}{result.stderr}")


NEWER_THAN_3_10 = {
    "tomllib": "import tomllib\n",
    "except_star": "try:\n    pass\nexcept* ValueError:\n    pass\n",
    "typing_self": ("from __future__ import annotations\nfrom typing import Self\n\n"
                    "class A:\n    def me(self) -> Self:\n        return self\n"),
    "datetime_utc": "import datetime\nnow = datetime.datetime.now(datetime.UTC)\n",
    "strenum": "from enum import StrEnum\n",
    "task_group": "import asyncio\nasyncio.TaskGroup\n",
}


@pytest.mark.parametrize("name", sorted(NEWER_THAN_3_10))
def test_the_check_catches_what_3_10_lacks(tmp_path, name):
    source = tmp_path / f"{name}.py"
    source.write_text(NEWER_THAN_3_10[name])
    result = _vermin(source)
    assert _rejected(result) and source.name in result.stdout, result.stdout + result.stderr


def test_the_check_accepts_the_guarded_tomli_fallback(tmp_path):
    # hal/toml_compat.py's form: tomllib only where the version check says it exists.
    source = tmp_path / "fallback.py"
    source.write_text("import sys\nif sys.version_info >= (3, 11):\n    import tomllib\n"
                      "else:\n    import tomli as tomllib\n")
    assert not _rejected(_vermin(source))
