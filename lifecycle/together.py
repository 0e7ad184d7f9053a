"""Independent steps side by side, settled together."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any


async def together(*steps: Awaitable[Any]) -> list[Any]:
    """Run ``steps`` concurrently and wait for every one of them; then raise the first error, in argument order.

    Unlike a bare ``asyncio.gather``, nothing is still running when an error reaches the caller: the error paths
    that save a work item never race a checkpoint of the same item.
    """
    results = await asyncio.gather(*steps, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results
