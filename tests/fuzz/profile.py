"""Shared by the fuzz tests: the deterministic profile and the example budget."""

from __future__ import annotations

import os

from hypothesis import settings

import tests.fuzz.conftest  # noqa: F401  (registers the profile when a module is imported on its own)

FUZZ = settings.get_profile("fuzz")


def examples(count: int) -> int:
    """``count`` scaled by LIFECYCLE_FUZZ_SCALE (default 1)."""
    return max(1, int(count * float(os.environ.get("LIFECYCLE_FUZZ_SCALE", "1"))))
