"""The ASGI application: Graph under /v1.0 and /beta, the inspection API under /_tenantsim, fault injection."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tenantsim.batch import run_batch
from tenantsim.errors import GraphError, envelope
from tenantsim.faults import FaultConfig
from tenantsim.runtime import VERSIONS, GraphRequest, GraphResponse, LogEntry, Simulator
from tenantsim.seed import POSTURES, build_seed

GRAPH_METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE"]
IDENTITY_PROVIDERS = frozenset({"AzureAD", "Google", "MicrosoftAccount", "EmailOTP", "SAML", "Facebook"})


def create_app(sim: Simulator) -> ASGIApp:
    async def graph(request: Request) -> Response:
        version = request.path_params["version"]
        if version not in VERSIONS:
            return _error_response(400, "BadRequest", f"Invalid version: {version}", request)
        headers = {k.lower(): v for k, v in request.headers.items()}
        raw = await request.body()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                return _error_response(400, "BadRequest", "Unable to read JSON request payload.", request)
        graph_request = GraphRequest(
            method=request.method,
            version=version,
            path="/" + request.path_params["path"],
            query=dict(request.query_params),
            headers=headers,
            body=body,
        )
        async with sim.lock:
            sim.base_url = str(request.base_url).rstrip("/")
            if graph_request.path == "/$batch" and request.method == "POST":
                try:
                    response = run_batch(sim, graph_request)
                except GraphError as error:
                    return _error_response(error.status, error.code, error.message, request, error.headers)
            else:
                response = sim.handle(graph_request)
        return _to_starlette(response)

    inspection = _InspectionApi(sim)
    routes = [
        Route("/_tenantsim/token", inspection.token, methods=["POST"]),
        Route("/_tenantsim/seed", inspection.seed, methods=["POST"]),
        Route("/_tenantsim/snapshot", inspection.snapshot, methods=["GET"]),
        Route("/_tenantsim/requests", inspection.requests, methods=["GET"]),
        Route("/_tenantsim/counters", inspection.counters, methods=["GET"]),
        Route("/_tenantsim/reset-counters", inspection.reset_counters, methods=["POST"]),
        Route("/_tenantsim/faults", inspection.faults, methods=["GET", "PUT"]),
        Route("/_tenantsim/config", inspection.config, methods=["GET", "PUT"]),
        Route("/_tenantsim/identity-provider", inspection.identity_provider, methods=["PUT"]),
        Route("/_tenantsim/users/{user_id}", inspection.patch_user, methods=["PATCH"]),
        Route("/_tenantsim/groups/{group_id}/members", inspection.add_group_member, methods=["POST"]),
        Route("/_tenantsim/sign-ins", inspection.add_sign_ins, methods=["POST"]),
        Route("/_tenantsim/lifecycle-policies/process", inspection.process_lifecycle_policies, methods=["POST"]),
        Route("/_tenantsim/lifecycle-policies/attestations", inspection.attest_guest, methods=["POST"]),
        Route("/{version}/{path:path}", graph, methods=GRAPH_METHODS),
    ]
    return FaultInjector(Starlette(routes=routes), sim)


def _to_starlette(response: GraphResponse) -> Response:
    if isinstance(response.body, dict):
        content: bytes | str | None = json.dumps(response.body)
    elif isinstance(response.body, str):
        content = response.body
    else:
        content = None
    return Response(content=content, status_code=response.status, headers=response.headers)


def _error_response(
    status: int, code: str, message: str, request: Request, headers: dict[str, str] | None = None
) -> Response:
    request_id = str(uuid.uuid4())
    client_request_id = request.headers.get("client-request-id") or request_id
    return JSONResponse(
        envelope(code, message, request_id, client_request_id),
        status_code=status,
        headers={**(headers or {}), "request-id": request_id, "client-request-id": client_request_id},
    )


class FaultInjector:
    """Outermost ASGI layer: latency, injected 429/503/504, outages and connection resets on Graph paths."""

    def __init__(self, app: ASGIApp, sim: Simulator) -> None:
        self.app = app
        self.sim = sim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(("/v1.0/", "/beta/")):
            await self.app(scope, receive, send)
            return
        plan = self.sim.faults.plan(path)
        if plan.delay_seconds:
            await asyncio.sleep(plan.delay_seconds)
        if plan.kind is None:
            await self.app(scope, receive, send)
            return
        self.sim.counters.faults[plan.kind] += 1
        self.sim.request_log.append(
            LogEntry(
                scope["method"],
                path,
                0 if plan.kind == "reset" else _FAULT_STATUS[plan.kind][0],
                [],
                None,
                False,
                self.sim.now_iso(),
            )
        )
        if plan.kind == "reset":
            # uvicorn's send is a bound method of the connection's request cycle, which holds the transport.
            transport = getattr(getattr(send, "__self__", None), "transport", None)
            if transport is not None:
                transport.abort()
                return
            raise ConnectionResetError("injected connection reset")
        status, code, message = _FAULT_STATUS[plan.kind]
        request_id = str(uuid.uuid4())
        headers = dict((k.decode().lower(), v.decode()) for k, v in scope.get("headers", []))
        client_request_id = headers.get("client-request-id") or request_id
        body = json.dumps(envelope(code, message, request_id, client_request_id)).encode()
        response_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"request-id", request_id.encode()),
            (b"client-request-id", client_request_id.encode()),
        ]
        if status in (429, 503):
            response_headers.append((b"retry-after", f"{self.sim.faults.retry_after_seconds:g}".encode()))
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": body})


_FAULT_STATUS = {
    "429": (429, "TooManyRequests", "Please retry again later."),
    "503": (503, "ServiceUnavailable", "The service is temporarily unavailable. Please retry."),
    "504": (504, "GatewayTimeout", "The gateway timed out waiting for the service."),
    "outage": (503, "ServiceUnavailable", "The service is temporarily unavailable. Please retry."),
}


class _InspectionApi:
    """Test-facing endpoints outside Graph's namespace: tokens, seeding, state, logs, counters, knobs."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    async def _json(self, request: Request) -> dict[str, Any]:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError as exc:
            raise GraphError(400, "BadRequest", "The body is not valid JSON.") from exc
        if not isinstance(body, dict):
            raise GraphError(400, "BadRequest", "The body must be a JSON object.")
        return body

    async def _guarded(self, request: Request, action: Any) -> Response:
        try:
            body = await self._json(request) if request.method in {"POST", "PUT", "PATCH"} else {}
            async with self.sim.lock:
                result = action(body)
        except GraphError as error:
            return _error_response(error.status, error.code, error.message, request)
        if isinstance(result, Response):
            return result
        return JSONResponse(result)

    async def token(self, request: Request) -> Response:
        def issue(body: dict[str, Any]) -> dict[str, Any]:
            roles = body.get("roles", [])
            if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
                raise GraphError(400, "BadRequest", "'roles' must be a list of permission names.")
            lifetime = int(body.get("lifetimeSeconds", 3600))
            kwargs = {k: body[c] for k, c in (("app_id", "appId"), ("tenant_id", "tenantId")) if c in body}
            token = self.sim.issuer.issue(roles, lifetime_seconds=lifetime, **kwargs)
            return {"token_type": "Bearer", "expires_in": lifetime, "access_token": token}

        return await self._guarded(request, issue)

    async def seed(self, request: Request) -> Response:
        def reseed(body: dict[str, Any]) -> dict[str, Any]:
            document = body.get("document")
            if document is None:
                posture = body.get("builtin", "fresh")
                if posture not in POSTURES:
                    raise GraphError(400, "BadRequest", f"'builtin' must be one of {POSTURES}.")
                anchor = datetime.fromisoformat(body["anchor"].replace("Z", "+00:00")) if "anchor" in body else None
                document = build_seed(int(body.get("guests", 300)), int(body.get("randomSeed", 0)), posture, anchor)
            try:
                self.sim.load(document)
            except (KeyError, TypeError, ValueError) as exc:
                raise GraphError(400, "BadRequest", f"Not a valid seed document: {exc!r}") from exc
            return {"users": len(self.sim.directory.users), "guests": self.sim.directory.guest_count()}

        return await self._guarded(request, reseed)

    async def snapshot(self, request: Request) -> Response:
        def take(_body: dict[str, Any]) -> dict[str, Any]:
            self.sim.catch_up(self.sim)  # group memberships as of the tenant's clock
            return self.sim.directory.snapshot()

        return await self._guarded(request, take)

    async def requests(self, request: Request) -> Response:
        def log(_body: dict[str, Any]) -> dict[str, Any]:
            return {
                "value": [
                    {
                        "method": e.method,
                        "path": e.path,
                        "status": e.status,
                        "roles": e.roles,
                        "appId": e.app_id,
                        "inBatch": e.in_batch,
                        "at": e.at,
                    }
                    for e in self.sim.request_log
                ]
            }

        return await self._guarded(request, log)

    async def counters(self, request: Request) -> Response:
        return await self._guarded(request, lambda _b: self.sim.counters.as_json())

    async def reset_counters(self, request: Request) -> Response:
        def reset(_body: dict[str, Any]) -> Response:
            self.sim.counters = type(self.sim.counters)()
            self.sim.request_log.clear()
            return Response(status_code=204)

        return await self._guarded(request, reset)

    async def faults(self, request: Request) -> Response:
        def handle(body: dict[str, Any]) -> dict[str, Any]:
            if request.method == "PUT":
                self.sim.faults = FaultConfig.from_json(body)
            return self.sim.faults.as_json()

        return await self._guarded(request, handle)

    async def config(self, request: Request) -> Response:
        def handle(body: dict[str, Any]) -> dict[str, Any]:
            if request.method == "PUT":
                self.sim.config.update(body)
                self.sim.throttler.reset()
            return self.sim.config.as_json()

        return await self._guarded(request, handle)

    async def identity_provider(self, request: Request) -> Response:
        def handle(body: dict[str, Any]) -> dict[str, Any]:
            domain = str(body.get("domain", "")).lower()
            provider = body.get("identityProvider")
            if not domain or provider not in IDENTITY_PROVIDERS:
                raise GraphError(
                    400, "BadRequest", f"Need 'domain' and 'identityProvider' in {sorted(IDENTITY_PROVIDERS)}."
                )
            tenant_id = body.get("tenantId")
            directory = self.sim.directory
            if provider == "AzureAD":
                if not tenant_id:
                    raise GraphError(400, "BadRequest", "An AzureAD domain needs 'tenantId'.")
                directory.tenants.setdefault(
                    tenant_id,
                    {
                        "tenantId": tenant_id,
                        "displayName": body.get("tenantDisplayName", domain),
                        "defaultDomainName": body.get("defaultDomainName", f"{domain.split('.')[0]}.onmicrosoft.com"),
                        "federationBrandName": None,
                    },
                )
            directory.domains[domain] = {
                "identityProvider": provider,
                "tenantId": tenant_id if provider == "AzureAD" else None,
            }
            if provider == "AzureAD":
                # The tenant's primary domain unless told otherwise or the tenant already has one.
                has_primary = any(
                    d.get("primary") and d.get("tenantId") == tenant_id
                    for name, d in directory.domains.items()
                    if name != domain
                )
                directory.domains[domain]["primary"] = bool(body.get("primary", not has_primary))
            return {"domain": domain, **directory.domains[domain]}

        return await self._guarded(request, handle)

    async def patch_user(self, request: Request) -> Response:
        """Test hook: set any stored property (e.g. redeem a guest, age its sign-in) without Graph's rules."""
        user_id = request.path_params["user_id"]

        def handle(body: dict[str, Any]) -> dict[str, Any]:
            directory = self.sim.directory
            if user_id not in directory.users:
                raise GraphError(404, "Request_ResourceNotFound", f"User '{user_id}' does not exist.")
            if "id" in body:
                raise GraphError(400, "BadRequest", "The id cannot change.")
            directory.update_user(user_id, body)
            return dict(directory.users[user_id].data)

        return await self._guarded(request, handle)

    async def add_sign_ins(self, request: Request) -> Response:
        """Test hook: sign-in events as Entra would have logged them (tenantsim evaluates no policy itself)."""
        from tenantsim.api.sign_ins import add_events

        def handle(body: dict[str, Any]) -> dict[str, Any]:
            return {"value": add_events(self.sim.directory, body.get("signIns"), self.sim.now_iso())}

        return await self._guarded(request, handle)

    async def add_group_member(self, request: Request) -> Response:
        """Test hook: put a user or a group into a group (an administrator changing membership mid-run)."""
        group_id = request.path_params["group_id"]

        def handle(body: dict[str, Any]) -> dict[str, Any]:
            directory = self.sim.directory
            member = body.get("id")
            if group_id not in directory.groups:
                raise GraphError(404, "Request_ResourceNotFound", f"Group '{group_id}' does not exist.")
            if not isinstance(member, str) or (member not in directory.users and member not in directory.groups):
                raise GraphError(400, "BadRequest", "'id' must name an existing user or group.")
            if member not in directory.groups[group_id]["members"]:
                directory.groups[group_id]["members"].append(member)
            return {"id": group_id, "members": list(directory.groups[group_id]["members"])}

        return await self._guarded(request, handle)

    async def process_lifecycle_policies(self, request: Request) -> Response:
        """Test hook: run Lifecycle Workflows' daily evaluation of the enabled guest lifecycle policies now
        (body {"policyId"?}: write only that policy's report)."""
        from tenantsim.api.lifecycle_evaluation import process

        def handle(body: dict[str, Any]) -> dict[str, Any]:
            self.sim.catch_up(self.sim)
            return {"processed": process(self.sim, body.get("policyId"))}

        return await self._guarded(request, handle)

    async def attest_guest(self, request: Request) -> Response:
        """Test hook: a sponsor attests a guest (body {"userId", "attestedDateTime"?}; default the tenant's now)."""
        from tenantsim.api.lifecycle_evaluation import record_attestation

        def handle(body: dict[str, Any]) -> dict[str, Any]:
            return record_attestation(self.sim, str(body.get("userId", "")), body.get("attestedDateTime"))

        return await self._guarded(request, handle)
