"""Placeholder of the ground commit for issue 12 (see /work/helper-brief.md)."""

from __future__ import annotations

import azure.functions as func

bp = func.Blueprint()
