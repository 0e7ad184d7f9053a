"""The admin endpoint's HTTP handling, free of any web framework (function_app.py is a thin adapter).

``POST plan``  {"command", "args"}            -> the list of changes by name and the plan's digest
``POST apply`` {"command", "args", "digest"}  -> acts only if the plan it computes again has that digest
A read-only command (the doctor, run as the app) answers its result at ``plan`` and has no ``apply``.

Order of checks: method and step, size, token (401), operator and role (403), body (400), then the command.
Every answer is JSON; nothing raises to the host. Every request that names an operator is audited with the
operator taken from the token: a name in the body is ignored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import structlog

from lifecycle.admin.digest import plan_digest
from lifecycle.admin.identity import Forbidden, Operator, operator_from_claims
from lifecycle.admin.ports import AdminCommand, AdminInputError, AdminPorts, AdminRefused
from lifecycle.models import AuditEntry
from lifecycle.services import Services
from lifecycle.signup.auth import BearerValidator, Unauthorized

log = structlog.get_logger("lifecycle.admin")

JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store"}
STEPS = ("plan", "apply")
Answer = tuple[int, dict[str, str], bytes]


async def handle_admin_request(
    method: str, step: str, headers: Mapping[str, str], body: bytes, bearer: BearerValidator, ports: AdminPorts
) -> Answer:
    """Answer one admin request as (status, headers, body). Never raises."""
    try:
        return await _handle(method, step, {k.lower(): v for k, v in headers.items()}, body, bearer, ports)
    except Exception:
        log.exception("admin.failed", step=step)
        return _error(500, "internal-error", "the request failed inside the function app; its log has the traceback")


async def _handle(
    method: str, step: str, headers: dict[str, str], body: bytes, bearer: BearerValidator, ports: AdminPorts
) -> Answer:
    if method.upper() != "POST":
        return _error(405, "method-not-allowed", "use POST", {"Allow": "POST"})
    if step not in STEPS:
        return _error(404, "unknown-step", f"POST /api/admin/plan or /api/admin/apply, not {step!r}")
    if len(body) > ports.max_body_bytes:
        return _error(413, "body-too-large", f"the body is over {ports.max_body_bytes} bytes")
    scheme, _, token = headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _unauthorized("credentials-missing", "send an Entra access token for the endpoint as a Bearer token")
    try:
        caller = await bearer.validate(token.strip())
    except Unauthorized as exc:
        log.warning("admin.unauthorized", reason=exc.reason, **exc.detail)
        return _unauthorized(exc.reason, "the access token is not accepted")
    services = await ports.services()
    try:
        operator = operator_from_claims(caller.claims, ports.role)
    except Forbidden as exc:
        if exc.operator is not None:
            await _audit(services, "admin.denied", exc.operator, f"{exc.code}: {exc.message}", {"step": step})
        log.warning("admin.forbidden", reason=exc.code, oid=caller.claims.get("oid"))
        return _error(403, exc.code, exc.message)
    try:
        command, args, digest = _request(body, step, ports)
    except AdminInputError as exc:
        await _audit(services, "admin.rejected", operator, f"{exc.code}: {exc.message}", {"step": step})
        return _error(400, exc.code, exc.message)
    structlog.contextvars.bind_contextvars(admin_command=command.name, operator=operator.object_id)
    if command.read_only:
        if step == "apply":
            return _error(400, "read-only-command", f"{command.name} only reads: POST it to /api/admin/plan")
        return await _read(services, command, args, operator)
    if step == "plan":
        return await _plan(services, command, args, operator)
    return await _apply(services, command, args, digest, operator)


def _request(body: bytes, step: str, ports: AdminPorts) -> tuple[AdminCommand, dict[str, Any], str | None]:
    try:
        document = json.loads(body or b"{}")
    except (ValueError, RecursionError):
        raise AdminInputError("malformed-json", "the body is not JSON") from None
    if not isinstance(document, dict):
        raise AdminInputError("not-an-object", "the body is a JSON object: {command, args, digest}")
    name = document.get("command")
    if not isinstance(name, str) or name not in ports.commands:
        raise AdminInputError("unknown-command", f"command is one of {', '.join(sorted(ports.commands))}")
    command = ports.commands[name]
    args = command.parse(document.get("args", {}))
    digest = document.get("digest")
    if step == "apply" and not command.read_only and not (isinstance(digest, str) and digest.startswith("sha256:")):
        raise AdminInputError("digest-missing", "apply carries the digest the plan step answered")
    return command, args, digest


async def _read(services: Services, command: AdminCommand, args: dict[str, Any], operator: Operator) -> Answer:
    carried = await command.carry_out(services, args, None, operator.actor)
    details = {"command": command.name, "args": args, "exitCode": carried.exit_code}
    await _audit(services, "admin.read", operator, f"{command.name}: exit {carried.exit_code}", details)
    return _answer(
        200,
        {
            "command": command.name,
            "operator": operator.as_dict(),
            "exitCode": carried.exit_code,
            "text": carried.text,
            "result": carried.result,
        },
    )


async def _plan(services: Services, command: AdminCommand, args: dict[str, Any], operator: Operator) -> Answer:
    rows = await command.changes(services, args)
    digest = plan_digest(command.name, args, rows)
    count = "refused by a guardrail" if rows is None else f"{len(rows)} change(s)"
    await _audit(
        services,
        "admin.planned",
        operator,
        f"{command.name}: {count}",
        {"command": command.name, "args": args, "digest": digest, "changes": None if rows is None else len(rows)},
    )
    return _answer(
        200,
        {
            "command": command.name,
            "args": args,
            "operator": operator.as_dict(),
            "columns": list(command.columns),
            "rows": rows,
            "digest": digest,
        },
    )


async def _apply(
    services: Services, command: AdminCommand, args: dict[str, Any], digest: str | None, operator: Operator
) -> Answer:
    rows = await command.changes(services, args)
    now = plan_digest(command.name, args, rows)
    details: dict[str, Any] = {"command": command.name, "args": args, "digest": digest}
    if now != digest:
        await _audit(
            services,
            "admin.refused",
            operator,
            f"{command.name}: the plan changed since it was confirmed; nothing was changed",
            {**details, "currentDigest": now},
        )
        return _answer(
            409,
            {
                "error": {
                    "code": "plan-changed",
                    "message": "the plan is not the one confirmed (the tenant or the queue changed since); "
                    "nothing was changed: plan again and confirm the new list",
                },
                "rows": rows,
                "digest": now,
            },
        )
    await _audit(services, "admin.apply-requested", operator, f"{command.name}: confirmed plan", details)
    try:
        carried = await command.carry_out(services, args, rows, operator.actor)
    except AdminRefused as exc:
        await _audit(services, "admin.refused", operator, f"{command.name}: {exc.code}: {exc.message}", details)
        return _error(409, exc.code, exc.message)
    except Exception as exc:
        # What was asked stays on record beside the failure; the traceback goes to the log (handle_admin_request).
        reason = f"{command.name}: failed: {type(exc).__name__}"
        await _audit(services, "admin.failed", operator, reason, details)
        raise
    await _audit(
        services,
        "admin.applied",
        operator,
        f"{command.name}: exit {carried.exit_code}",
        {**details, "exitCode": carried.exit_code, "runId": carried.run_id},
    )
    return _answer(
        200,
        {
            "command": command.name,
            "exitCode": carried.exit_code,
            "text": carried.text,
            "result": carried.result,
            "digest": now,
        },
    )


async def _audit(services: Services, action: str, operator: Operator, reason: str, details: dict[str, Any]) -> None:
    await services.audit.record(
        AuditEntry(
            at=services.clock.now(),
            action=action,
            target=str(details.get("command", "admin")),
            reason=reason,
            actor=operator.actor,
            details={**details, "operatorObjectId": operator.object_id, "operatorName": operator.name},
        )
    )


def _unauthorized(code: str, message: str) -> Answer:
    return _error(401, code, message, {"WWW-Authenticate": "Bearer"})


def _error(status: int, code: str, message: str, extra_headers: dict[str, str] | None = None) -> Answer:
    return _answer(status, {"error": {"code": code, "message": message}}, extra_headers)


def _answer(status: int, payload: dict[str, Any], extra_headers: dict[str, str] | None = None) -> Answer:
    body = json.dumps(payload, default=str).encode("utf-8")
    return status, {**JSON_HEADERS, **(extra_headers or {})}, body
