"""Dependencies point inward (STYLE.md rule 1): a test walks every import."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import bharatsend_core

PACKAGE = Path(bharatsend_core.__file__).parent

# What each layer may import besides the standard library and itself.
ALLOWED: dict[str, set[str]] = {
    "domain": {"attrs", "phonenumbers", "bharatsend_core.domain"},
    "ports": {"attrs", "bharatsend_core.domain", "bharatsend_core.ports"},
    # Settings are the service layer's input; config imports only the domain.
    "service": {"attrs", "cattrs", "bharatsend_core.domain", "bharatsend_core.ports",
                "bharatsend_core.service", "bharatsend_core.config"},
}  # fmt: skip


def imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.ImportFrom) and node.level:
            found.append((node.lineno, "bharatsend_core.<relative>"))
    return found


def allowed(module: str, layer: str) -> bool:
    root = module.split(".")[0]
    if root in sys.stdlib_module_names or root == "__future__":
        return True
    return any(module == a or module.startswith(a + ".") for a in ALLOWED[layer])


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_inward(layer: str) -> None:
    offenders = [
        f"{path.relative_to(PACKAGE)}:{line} imports {module}"
        for path in sorted((PACKAGE / layer).rglob("*.py"))
        for line, module in imports_of(path)
        if not allowed(module, layer)
    ]
    assert offenders == []


def test_the_walker_sees_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import sqlalchemy\nfrom bharatsend_core.adapters import x\nimport re\n")
    modules = [m for _, m in imports_of(bad)]
    assert [m for m in modules if not allowed(m, "domain")] == [
        "sqlalchemy",
        "bharatsend_core.adapters",
    ]


def test_importing_the_domain_loads_no_framework_or_driver() -> None:
    import subprocess

    code = (
        "import sys, bharatsend_core.domain.dlt, bharatsend_core.domain.message, "
        "bharatsend_core.domain.phone, bharatsend_core.domain.encoding\n"
        "mods = ('sqlalchemy', 'smpplib', 'flask', 'django', 'psycopg')\n"
        "bad = [m for m in mods if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
