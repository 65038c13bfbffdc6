"""The code stays ruff-clean, ``shared/`` and ``functions/`` pass ``mypy --strict`` (STYLE.md,
Habits), and the Python dependencies are locked with hashes (docs/decisions/0008)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_finds_nothing() -> None:
    result = run(str(BIN / "ruff"), "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_shared_and_functions_type_check_strictly_and_the_domain_imports_no_azure_sdk() -> None:
    result = run(str(BIN / "mypy"))  # the files of pyproject's [tool.mypy]: shared/ and functions/
    assert result.returncode == 0, result.stdout + result.stderr
    for source in (ROOT / "shared" / "domain").glob("*.py"):
        text = source.read_text()
        assert "import azure" not in text and "from azure" not in text, source.name


def pins(lock: str) -> dict[str, tuple[str, str]]:
    """A hashed lock's pins: normalised name -> (version, the requirement's marker)."""
    found = {}
    for block in (ROOT / lock).read_text().replace("\\\n", " ").splitlines():
        if block.strip() and not block.lstrip().startswith("#"):
            requirement, _, rest = block.partition(" --hash=")
            assert rest, f"{lock}: {requirement} has no hash"
            req = Requirement(requirement.strip())
            (spec,) = req.specifier
            assert spec.operator == "==", f"{lock}: {req} is not pinned"
            found[canonicalize_name(req.name)] = (spec.version, str(req.marker or ""))
    return found


def project() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(("lock", "declared"), [("requirements.lock", lambda: project()["dependencies"]),
                                                ("requirements-dev.lock", lambda: [*project()["dependencies"],
                                                 *project()["optional-dependencies"]["dev"]])])
def test_every_declared_dependency_is_locked_with_hashes_at_a_version_it_allows(
        lock: str, declared: Callable[[], list[str]]) -> None:
    locked = pins(lock)
    for line in declared():
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name in locked, f"{req.name} is declared in pyproject.toml but not in {lock}: run scripts/lock.sh"
        version, _ = locked[name]
        assert req.specifier.contains(version, prereleases=True), (
            f"{lock} pins {req.name} {version}, pyproject.toml wants {req.specifier}: run scripts/lock.sh")


def test_the_dev_lock_has_the_app_lock_s_versions() -> None:
    app, dev = pins("requirements.lock"), pins("requirements-dev.lock")
    assert {name: dev.get(name) for name in app} == app


def test_requirements_txt_for_azure_is_the_app_lock() -> None:
    def body(name: str) -> list[str]:
        return [line for line in (ROOT / name).read_text().splitlines() if not line.startswith("#")]

    assert body("requirements.txt") == body("requirements.lock"), "run scripts/lock.sh"
