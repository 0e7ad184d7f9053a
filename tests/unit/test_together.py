"""lifecycle.together: independent steps side by side, every one settled before an error reaches the caller."""

from __future__ import annotations

import asyncio

import pytest

from lifecycle.together import together


async def test_results_come_back_in_argument_order() -> None:
    async def after(seconds: float, value: str) -> str:
        await asyncio.sleep(seconds)
        return value

    assert await together(after(0.02, "first"), after(0.0, "second")) == ["first", "second"]


async def test_an_error_is_raised_only_once_every_step_has_finished() -> None:
    finished = []

    async def fails() -> None:
        raise RuntimeError("lookup failed")

    async def slow_write() -> None:
        await asyncio.sleep(0.02)
        finished.append("write")

    with pytest.raises(RuntimeError, match="lookup failed"):
        await together(fails(), slow_write())
    assert finished == ["write"]  # a bare gather would raise while the write is still running
