"""One Graph request through the simulator: authenticate, route, throttle, run the handler, shape the answer.

The same pipeline serves top-level requests and the items of a $batch, so permissions, throttling and
replication delay behave identically in both. Handlers are synchronous; the ASGI layer runs the pipeline
under one asyncio lock, which makes every request atomic against the tenant state.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from tenantsim import permissions
from tenantsim.config import SimConfig
from tenantsim.directory import Directory
from tenantsim.errors import GraphError, envelope
from tenantsim.faults import FaultConfig
from tenantsim.throttling import Throttler, request_cost
from tenantsim.tokens import Caller, TokenIssuer

JSON_CONTENT_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
VERSIONS = ("v1.0", "beta")


@dataclass(slots=True)
class GraphRequest:
    method: str
    version: str
    path: str  # below the version segment, e.g. "/users/123"
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: Any = None
    in_batch: bool = False


@dataclass(slots=True)
class GraphResponse:
    status: int
    body: Any = None  # dict -> JSON, str -> text/plain, None -> empty
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Call:
    """What a handler gets: the simulator, the authenticated caller and the request."""

    sim: Simulator
    caller: Caller
    request: GraphRequest

    def require(self, operation: str) -> None:
        if not permissions.is_allowed(operation, self.caller.roles):
            raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")

    def context_url(self, fragment: str) -> str:
        return f"{self.sim.base_url}/{self.request.version}/$metadata#{fragment}"

    def next_link(self, paging: dict[str, str]) -> str:
        """The @odata.nextLink: this request's URL with its other query options and ``paging`` in place of its
        own paging options. A URL: its query percent-encoded, the options' ``$`` kept as concepts/paging.md shows."""
        kept = [(k, v) for k, v in self.request.query.items() if k not in paging]
        query = urlencode([*kept, *paging.items()], safe="$", quote_via=quote)
        return f"{self.sim.base_url}/{self.request.version}{self.request.path}?{query}"


Handler = Callable[..., GraphResponse]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    resource: str  # the throttling cost family ("users" or "other")
    versions: tuple[str, ...] = VERSIONS


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(
        self, method: str, pattern: str, handler: Handler, resource: str = "other", versions: tuple[str, ...] = VERSIONS
    ) -> None:
        self.routes.append(Route(method, re.compile(f"^{pattern}$"), handler, resource, versions))

    def match(self, method: str, version: str, path: str) -> tuple[Route, dict[str, str]]:
        path_matched = False
        for route in self.routes:
            found = route.pattern.match(path)
            if found is None or version not in route.versions:
                continue
            path_matched = True
            if route.method == method:
                return route, found.groupdict()
        if path_matched:
            raise GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")
        segment = next((s for s in reversed(path.split("/")) if s), "")
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")


@dataclass(slots=True)
class LogEntry:
    method: str
    path: str
    status: int
    roles: list[str]
    app_id: str | None
    in_batch: bool
    at: str


@dataclass(slots=True)
class Counters:
    requests: int = 0
    writes: int = 0
    invitations: int = 0
    throttled: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "writes": self.writes,
            "invitations": self.invitations,
            "throttledByScope": dict(self.throttled),
            "faultsByKind": dict(self.faults),
        }


class Simulator:
    def __init__(
        self,
        document: dict[str, Any],
        config: SimConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        from tenantsim.api import build_router  # the handlers import this module's types
        from tenantsim.api.governance.assignment_expiry import expire_due
        from tenantsim.api.governance.assignment_requests import process_in_background
        from tenantsim.api.users import purge_deleted

        self.clock = clock
        self.wall_clock = wall_clock

        # State that changes with time alone, brought up to the tenant's clock before each request.
        def catch_up(sim: Simulator) -> None:
            purge_deleted(sim)
            process_in_background(sim)
            expire_due(sim)

        self.catch_up: Callable[[Simulator], None] = catch_up
        self.config = config or SimConfig()
        self.directory = Directory(document)
        self.issuer = TokenIssuer(self.directory.tenant_id)
        self.throttler = Throttler(clock)
        self.faults = FaultConfig()
        self.counters = Counters()
        self.request_log: deque[LogEntry] = deque(maxlen=50_000)
        self.router = build_router()
        self.base_url = ""
        self.lock = asyncio.Lock()

    def load(self, document: dict[str, Any]) -> None:
        """Replace the tenant state; tokens stay valid when the tenant id is unchanged."""
        directory = Directory(document)
        if directory.tenant_id != self.directory.tenant_id:
            self.issuer = TokenIssuer(directory.tenant_id)
        self.directory = directory
        self.throttler.reset()

    def now(self) -> datetime:
        """The tenant's clock: the wall clock plus the configured offset."""
        return self.wall_clock() + timedelta(seconds=self.config.clock_offset_seconds)

    def now_iso(self) -> str:
        return self.now().strftime("%Y-%m-%dT%H:%M:%SZ")

    def handle(self, request: GraphRequest) -> GraphResponse:
        self.catch_up(self)
        request_id = str(uuid.uuid4())
        client_request_id = request.headers.get("client-request-id") or str(uuid.uuid4())
        caller: Caller | None = None
        extra: dict[str, str] = {}
        try:
            caller = self.issuer.verify(request.headers.get("authorization"))
            route, params = self.router.match(request.method, request.version, request.path)
            resource_units, writes = request_cost(request.method, route.resource, request.query)
            if self.config.throttling_enabled:
                extra = self._throttle(caller, route, request, resource_units, writes)
            response = route.handler(Call(self, caller, request), **params)
            response.headers.update(extra)
            response.headers["x-ms-resource-unit"] = str(resource_units)
        except GraphError as error:
            response = GraphResponse(
                error.status, envelope(error.code, error.message, request_id, client_request_id), dict(error.headers)
            )
        self.counters.requests += 1
        if request.method != "GET" and response.status < 400:
            self.counters.writes += 1
        response.headers["request-id"] = request_id
        response.headers["client-request-id"] = client_request_id
        if isinstance(response.body, dict):
            response.headers.setdefault("Content-Type", JSON_CONTENT_TYPE)
        self.request_log.append(
            LogEntry(
                method=request.method,
                path=f"/{request.version}{request.path}",
                status=response.status,
                roles=sorted(caller.roles) if caller else [],
                app_id=caller.app_id if caller else None,
                in_batch=request.in_batch,
                at=self.now_iso(),
            )
        )
        return response

    def _throttle(self, caller: Caller, route: Route, request: GraphRequest, ru: int, writes: int) -> dict[str, str]:
        if not is_identity_and_access(request.path):
            # Invitations have their own tenant limit (charged below); identity governance and the other
            # services are not part of the identity-and-access resource-unit and write quotas.
            ru, writes = 0, 0
        verdict = self.throttler.check(
            app_id=caller.app_id,
            tenant_id=caller.tenant_id,
            user_count=len(self.directory.users),
            resource_units=ru,
            writes=writes,
            is_invitation=request.path.rstrip("/") == "/invitations" and request.method == "POST",
            compression=self.config.time_compression,
            quota_scale=self.config.quota_scale,
        )
        if not verdict.allowed:
            self.counters.throttled[verdict.scope.split("/")[0]] += 1
            raise GraphError(
                429,
                "TooManyRequests",
                "Please retry again later.",
                {
                    "Retry-After": f"{verdict.retry_after:.3f}",
                    "x-ms-throttle-scope": verdict.scope,
                    "x-ms-throttle-information": verdict.information,
                },
            )
        if verdict.limit_percentage is not None:
            return {"x-ms-throttle-limit-percentage": f"{verdict.limit_percentage:.2f}"}
        return {}


# The resources the identity-and-access throttling limits cover (graph-contract.md section 12.2).
IDENTITY_AND_ACCESS_PREFIXES = (
    "/users",
    "/groups",
    "/applications",
    "/servicePrincipals",
    "/policies",
    "/directory",
    "/directoryObjects",
    "/organization",
    "/domains",
    "/tenantRelationships",
)


def is_identity_and_access(path: str) -> bool:
    return any(
        path == prefix or path.startswith((prefix + "/", prefix + "(")) for prefix in IDENTITY_AND_ACCESS_PREFIXES
    )
