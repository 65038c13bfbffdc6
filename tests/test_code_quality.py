"""The code stays ruff-clean and the domain passes ``mypy --strict`` (STYLE.md, Habits)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_finds_nothing() -> None:
    result = run(str(BIN / "ruff"), "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_domain_type_checks_strictly_and_imports_no_azure_sdk() -> None:
    result = run(str(BIN / "mypy"), "shared/domain")
    assert result.returncode == 0, result.stdout + result.stderr
    for source in (ROOT / "shared" / "domain").glob("*.py"):
        text = source.read_text()
        assert "import azure" not in text and "from azure" not in text, source.name


def test_requirements_txt_for_azure_lists_exactly_the_runtime_dependencies() -> None:
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    lines = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if line and line[0] != "#"]
    assert lines == declared
