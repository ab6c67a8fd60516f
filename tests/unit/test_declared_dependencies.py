"""Everything the project imports is declared in pyproject.toml.

A package that is only installed (by hand, or as another package's
dependency that a newer release drops) passes on the machine that has it and
fails on a fresh one: schemathesis 4 stopped bringing openapi-spec-validator,
which a test imports, and only a new virtualenv showed it. This test reads
every import in the project's own code and asks which distribution provides
each module.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterator
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("src", "contrib", "tests", "benchmarks")


def _python_files() -> Iterator[Path]:
    for top in SOURCES:
        yield from (ROOT / top).rglob("*.py")


def _first_party() -> set[str]:
    """Top-level modules and packages at the project's import roots.

    Only the roots, not every directory name: ``tests/django`` and
    ``contrib/flask`` must not hide imports of Django and Flask themselves.
    """
    contrib = [path for path in (ROOT / "contrib").iterdir() if path.is_dir()]
    names: set[str] = set()
    for root in (ROOT, ROOT / "src", ROOT / "benchmarks", *contrib):
        for child in root.iterdir():
            if child.suffix == ".py":
                names.add(child.stem)
            elif (child / "__init__.py").is_file():
                names.add(child.name)
    return names


def _imported_top_level(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    """Distribution names in the project's dependencies and every extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements.extend(extra)
    names = {_normalise(re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0]) for r in requirements}
    return names - {_normalise(project["name"])}


def test_every_third_party_import_is_declared() -> None:
    first_party = _first_party()
    providers = packages_distributions()
    declared = _declared()
    undeclared: dict[str, list[str]] = {}
    for path in _python_files():
        for module in _imported_top_level(path):
            if module in sys.stdlib_module_names or module in first_party:
                continue
            dists = {_normalise(d) for d in providers.get(module, [])}
            if not dists & declared:
                where = str(path.relative_to(ROOT))
                undeclared.setdefault(f"{module} (from {sorted(dists) or 'nothing'})", []).append(
                    where
                )
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_the_check_reads_imports_and_knows_its_own_modules(tmp_path: Path) -> None:
    """The walk finds ``import`` and ``from ... import``, skips relative imports, and
    counts as the project's own only what sits at an import root."""
    module = tmp_path / "sample.py"
    module.write_text(
        "import json, attr.validators\nfrom yaml import safe_load\nfrom . import sibling\n",
        encoding="utf-8",
    )
    assert _imported_top_level(module) == {"json", "attr", "yaml"}
    first_party = _first_party()
    assert {"bharatsend_core", "bharatsend_flask", "bharatsend_django", "tests"} <= first_party
    assert not {"django", "flask", "sqlalchemy"} & first_party
    assert "pyyaml" not in _declared()
    assert {"attrs", "smpplib", "pytest", "openapi-spec-validator"} <= _declared()
