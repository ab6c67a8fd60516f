"""The docs stay true: generated parts match the code, README examples run."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from bharatsend_core.domain.errors import ERROR_CODES
from bharatsend_core.domain.message import state_diagram

ROOT = Path(__file__).resolve().parents[2]


def test_architecture_diagram_is_the_one_generated_from_the_table() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = re.search(
        r"<!-- state-diagram:start -->\n```mermaid\n(.*?)```\n<!-- state-diagram:end -->",
        text,
        re.S,
    )
    assert block is not None
    assert block.group(1).strip() == state_diagram().strip()


@pytest.mark.parametrize("code", sorted(ERROR_CODES))
def test_every_error_code_is_documented_with_its_status(code: str) -> None:
    text = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    cls = ERROR_CODES[code]
    assert f"| `{code}` | `{cls.__name__}` | {cls.http_status} |" in text


def test_readme_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the examples create bharatsend.db in the working directory
    for name in list(os.environ):
        if name.startswith("BHARATSEND_"):
            monkeypatch.delenv(name)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert blocks
    for block in blocks:
        # Run as a script would (Flask(__name__) looks the module up by that name).
        exec(compile(block, "README.md", "exec"), {"__name__": "__main__"})


def test_readme_names_the_ci_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = re.search(r"^TEST_COMMAND='(.*)'$", ci, re.M)
    assert command is not None
    assert command.group(1) in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
