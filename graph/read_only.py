"""The Graph transport of an operator's read-only session (LIFECYCLE_GRAPH_CREDENTIAL=azure-cli).

Each tenant-changing command refuses to start in such a session; this is the floor under those checks: any
request but GET or HEAD is refused before it leaves the process, so a command that forgot its check stops at
its first write instead of changing the tenant with the operator's own roles. The product reads Graph with GET
only (no POST-bodied reads such as getByIds), so nothing it needs in the read-only runbook is refused.
"""

from __future__ import annotations

import httpx

from lifecycle.errors import ReadOnlySessionError

READS = frozenset({"GET", "HEAD"})


class ReadOnlyTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method.upper() not in READS:
            raise ReadOnlySessionError(
                f"{request.method} {request.url.path} refused: this session signs in as you and only reads "
                "(LIFECYCLE_GRAPH_CREDENTIAL=azure-cli); changes go through the admin endpoint (--remote)"
            )
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def transport_for(credential_kind: str) -> httpx.AsyncBaseTransport | None:
    """The inner Graph transport for a session: read-only on an operator's own sign-in, else the default."""
    if credential_kind != "azure-cli":
        return None
    from graph.pool import ShardedTransport

    return ReadOnlyTransport(ShardedTransport())
