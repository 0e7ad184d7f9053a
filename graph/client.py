"""The one place a GraphServiceClient is built.

Retries are owned by the product, not by the SDK: the default RetryHandler would sleep inside a queue
worker (burning its lock and execution time) and would re-send POST /invitations blindly. It is turned
off here, and graph.errors maps 429/5xx into ThrottledError/TransientGraphError for the caller's policy.

Under the SDK's middleware sits graph.budget_transport: every request spends the process's Graph budget
(graph.budget), paced from Graph's throttling headers. A request the budget would hold back longer than
``max_budget_wait`` fails at once with ThrottledError, so a queue worker reschedules it instead of sleeping
on its lock: seconds, or a graph.budget.WaitLimit that follows the worker's slots and its share of the budget
(what app.bootstrap passes).
"""

from __future__ import annotations

from typing import Any

import httpx
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.middleware.options import RetryHandlerOption
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph_core import GraphClientFactory

from graph.budget import GraphBudget, WaitLimit, shared_budget
from graph.budget_transport import BudgetedTransport
from graph.origin import GraphOrigin, OriginBoundTokenProvider
from graph.pool import ShardedTransport
from graph.raw import DirectHttp, attach_direct

LOOPBACK_HOSTS = ["localhost", "127.0.0.1", "::1"]
DEFAULT_MAX_BUDGET_WAIT = 10.0


def budgeted_transport(
    transport: httpx.AsyncBaseTransport | None = None,
    budget: GraphBudget | None = None,
    max_wait: float | WaitLimit | None = DEFAULT_MAX_BUDGET_WAIT,
) -> BudgetedTransport:
    """The transport every Graph HTTP client uses (the SDK's and the $batch client of the benchmarks)."""
    # 16 pools of 8 connections (graph.pool): as many as the budget's concurrency ceiling lets out at once.
    inner = transport or ShardedTransport()
    return BudgetedTransport(inner, budget or shared_budget(), max_wait=max_wait)


def graph_authentication(credential: Any, base_url: str, scope: str) -> AzureIdentityAuthenticationProvider:
    """The bearer-token provider, bound to the Graph origin of ``base_url``.

    ``allowed_hosts`` is kiota's own guard (host names only: any other host gets no token); the
    OriginBoundTokenProvider around it also compares scheme and port and refuses the request outright, so a
    planted link to another port on the same host never receives the token either.
    """
    origin = GraphOrigin.of(base_url)
    auth = AzureIdentityAuthenticationProvider(credential, scopes=[scope], allowed_hosts=[origin.host])
    auth.access_token_provider = OriginBoundTokenProvider(auth.access_token_provider, origin)
    return auth


def build_graph_client(
    *,
    credential: Any,
    base_url: str,
    scope: str = "https://graph.microsoft.com/.default",
    timeout_seconds: float = 30.0,
    transport: httpx.AsyncBaseTransport | None = None,
    budget: GraphBudget | None = None,
    max_budget_wait: float | WaitLimit | None = DEFAULT_MAX_BUDGET_WAIT,
) -> GraphServiceClient:
    auth = graph_authentication(credential, base_url, scope)
    timeout = httpx.Timeout(timeout_seconds, connect=10.0)
    shared = budgeted_transport(transport, budget, max_budget_wait)
    http_client = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(timeout=timeout, transport=shared),
        options={RetryHandlerOption.get_key(): RetryHandlerOption(max_retries=0)},
    )
    adapter = GraphRequestAdapter(auth, client=http_client)
    # Set explicitly, without a trailing slash: a base_url on the httpx client would double the slash.
    adapter.base_url = base_url.rstrip("/")
    client = GraphServiceClient(request_adapter=adapter)
    # graph.raw's requests go onto the same transport (budget, pool) without kiota's middleware.
    attach_direct(client, DirectHttp(httpx.AsyncClient(timeout=timeout, transport=shared), auth.access_token_provider))
    return client
