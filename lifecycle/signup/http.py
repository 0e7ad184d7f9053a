"""The connector's HTTP handling, free of any web framework: the Functions trigger is a thin adapter.

Order of checks: method, size, caller, content type, body, decision. An unauthenticated caller learns
nothing beyond "401"; the real reason goes to one structured log line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import structlog

from lifecycle.signup.auth import BasicCredentials, BearerValidator, Caller, Unauthorized
from lifecycle.signup.requests import MalformedSignUpRequest, SignUpFormat, parse_signup_request
from lifecycle.signup.responses import Answer, http_error, render
from lifecycle.signup.rules import Code, Outcome, SignUpRules, refuse

log = structlog.get_logger("lifecycle.signup")


@dataclass(frozen=True, slots=True)
class SignUpServices:
    rules: SignUpRules
    bearer: BearerValidator
    basic: BasicCredentials | None = None
    max_body_bytes: int = 64 * 1024


async def handle_signup_request(
    method: str, headers: Mapping[str, str], body: bytes, services: SignUpServices
) -> Answer:
    """Answer one sign-up callout as (status, headers, body). Never raises."""
    try:
        return await _handle(method, {k.lower(): v for k, v in headers.items()}, body, services)
    except Exception:
        log.exception("signup.failed")
        return http_error(500, "InternalError", "The request could not be processed.")


async def _handle(method: str, headers: dict[str, str], body: bytes, services: SignUpServices) -> Answer:
    if method.upper() != "POST":
        return http_error(405, "MethodNotAllowed", "Use POST.", {"Allow": "POST"})
    if len(body) > services.max_body_bytes:
        log.warning("signup.body_too_large", size=len(body), limit=services.max_body_bytes)
        return http_error(413, "PayloadTooLarge", "The request body is too large.")
    try:
        caller = await _authenticate(headers.get("authorization", ""), services)
    except Unauthorized as exc:
        return _unauthorized(exc, services)
    if headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        return http_error(415, "UnsupportedMediaType", "Send application/json.")
    try:
        raw = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting within the size limit
        log.warning("signup.bad_request", reason="body is not JSON", auth=caller.scheme)
        return http_error(400, "BadRequest", "The body is not valid JSON.")
    try:
        request = parse_signup_request(raw)
    except MalformedSignUpRequest as exc:
        log.warning("signup.bad_request", reason=exc.reason, format=exc.format, auth=caller.scheme)
        if exc.format is None:
            return http_error(400, "BadRequest", "The body is not a sign-up request.")
        return render(exc.format, refuse(Outcome.BLOCK, Code.BAD_REQUEST))
    if caller.scheme == "basic" and request.format is not SignUpFormat.CONNECTOR:
        return _unauthorized(Unauthorized("basic-not-allowed-for-extension", format=request.format), services)
    decision = services.rules.decide(request)
    log.info(
        "signup.decided",
        format=request.format,
        outcome=decision.outcome,
        code=decision.code,
        domain=decision.domain,
        partner=decision.partner,
        auth=caller.scheme,
        correlation_id=request.correlation_id,
    )
    return render(request.format, decision)


async def _authenticate(authorization: str, services: SignUpServices) -> Caller:
    scheme, _, credentials = authorization.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer" and credentials.strip():
        return await services.bearer.validate(credentials.strip())
    if scheme == "basic" and services.basic is not None:
        return services.basic.check(credentials)
    raise Unauthorized("credentials-missing" if not scheme else "scheme-not-accepted", scheme=scheme or None)


def _unauthorized(exc: Unauthorized, services: SignUpServices) -> Answer:
    log.warning("signup.unauthorized", reason=exc.reason, **exc.detail)
    challenge = 'Bearer, Basic realm="signup"' if services.basic is not None else "Bearer"
    return http_error(401, "Unauthorized", "Authentication failed.", {"WWW-Authenticate": challenge})
