"""The examples in the docstrings of ``shared/`` run as tests (python-stdnum's habit: the
module docstring documents the behaviour, and the documentation is checked)."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted(
    ".".join(path.relative_to(ROOT).with_suffix("").parts)
    for path in (ROOT / "shared").rglob("*.py")
    if ">>>" in path.read_text()
)


def test_the_modules_with_examples_are_found() -> None:
    assert "shared.domain.kid" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_the_docstring_examples_hold(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has '>>>' but no example ran"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} fail (output above)"
