"""Remote mode: a tenant-changing command carried out by the jobs app's identity through its admin endpoint.

The laptop holds no Graph permission. With ``--remote URL`` (or ``LIFECYCLE_ADMIN_URL``) the command asks the
endpoint to plan, shows the list of who and what by name exactly as locally, asks the same typed confirmation
(or takes ``--yes``), then asks the endpoint to apply that plan, naming it by its digest: a plan that changed in
between is refused and nothing is written. The token is the operator's own, from ``az login``
(AzureCliCredential, scope ``LIFECYCLE_ADMIN_SCOPE``, e.g. ``api://guest-lifecycle/.default``); a pipeline that
already holds one may pass it in ``LIFECYCLE_ADMIN_TOKEN``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

from app.cli.common import ExitCode, fail
from app.cli.decide import decide
from config.admin import ADMIN_SCOPE_SETTING, ADMIN_TOKEN_SETTING, ADMIN_URL_SETTING

RemoteOption = Annotated[
    str | None,
    typer.Option(
        "--remote",
        help="Carry the change out with the function app's identity through its admin endpoint "
        f"(https://APP.azurewebsites.net/api/admin); default: ${ADMIN_URL_SETTING}.",
    ),
]
TIMEOUT = httpx.Timeout(30.0, read=600.0)  # an apply may run a whole drift or governance pass


def remote_url(option: str | None) -> str | None:
    """The admin endpoint to use, or None to run locally."""
    url = (option or os.environ.get(ADMIN_URL_SETTING, "")).strip().rstrip("/")
    if not url:
        return None
    if not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise typer.BadParameter(f"{url}: the admin endpoint is an https URL", param_hint="--remote")
    return url


def require_app_identity(url: str | None, label: str, hint: str | None = None) -> str | None:
    """``url`` when the change goes through the endpoint; a usage error when this shell signs in as a person.

    A session on the operator's own sign-in (LIFECYCLE_GRAPH_CREDENTIAL=azure-cli) only reads: a change made
    from it would fail half-way on the first write the operator's roles do not allow, so it is refused first.
    """
    if url is None and os.environ.get("LIFECYCLE_GRAPH_CREDENTIAL", "").strip() == "azure-cli":
        raise fail(
            ExitCode.USAGE,
            f"{label} writes, and this shell only reads, with your own sign-in (LIFECYCLE_GRAPH_CREDENTIAL=azure-cli)",
            hint or f"set {ADMIN_URL_SETTING} or pass --remote URL: the function app carries the change out",
        )
    return url


def operator_token() -> str:
    """The operator's access token for the endpoint: from the environment, else from the Azure CLI's sign-in."""
    given = os.environ.get(ADMIN_TOKEN_SETTING, "").strip()
    if given:
        return given
    scope = os.environ.get(ADMIN_SCOPE_SETTING, "").strip()
    if not scope:
        raise fail(
            ExitCode.CONFIG,
            f"{ADMIN_SCOPE_SETTING} is not set",
            "set it to the app registration's App ID URI followed by /.default (api://guest-lifecycle/.default)",
        )
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import AzureCliCredential

    try:
        return AzureCliCredential().get_token(scope).token
    except ClientAuthenticationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise fail(ExitCode.FAILED, f"no token for {scope}: {first}", "az login, then run the command again") from None


class AdminClient:
    """plan and apply over HTTPS; every non-2xx answer ends the command with its code and message."""

    def __init__(self, url: str, token: str) -> None:
        self._url = url
        self._client = httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)

    def close(self) -> None:
        self._client.close()

    def plan(self, command: str, args: dict[str, Any]) -> dict[str, Any]:
        return self._post("plan", {"command": command, "args": args})

    def apply(self, command: str, args: dict[str, Any], digest: str) -> dict[str, Any]:
        return self._post("apply", {"command": command, "args": args, "digest": digest})

    def _post(self, step: str, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self._client.post(f"{self._url}/{step}", json=payload)
        except httpx.HTTPError as exc:
            raise fail(
                ExitCode.UNREACHABLE,
                f"cannot reach the admin endpoint {self._url}: {type(exc).__name__}: {exc}",
                f"check --remote / {ADMIN_URL_SETTING} and that the function app is running",
            ) from None
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if response.is_success and isinstance(answer, dict):
            return answer
        error = answer.get("error") if isinstance(answer, dict) else None
        error = error if isinstance(error, dict) else {}
        code, message = error.get("code", f"http-{response.status_code}"), error.get("message", response.text[:200])
        raise fail(
            ExitCode.FAILED,
            f"the admin endpoint refused ({response.status_code} {code}): {message}",
            _HINTS.get(code, _HINT),
        )


_HINT = "run again with --debug, or read the function app's log for the request"
_HINTS = {
    "plan-changed": "nothing was changed; run the command again to see and confirm the new list",
    "role-missing": "ask an administrator to assign you the operator app role on the product's app registration",
    "not-a-person": "sign in as yourself with az login; the endpoint acts only for a named person",
    "audience-mismatch": f"{ADMIN_SCOPE_SETTING} must be the product's App ID URI followed by /.default",
    "issuer-mismatch": "sign in to the workforce tenant the product runs in (az login --tenant TENANT_ID)",
    "token-expired": "az login again (or get a fresh token), then run the command again",
    # An HTTP trigger must answer within 230 s; past that the front end answers for it while the function runs on.
    "http-502": "the function app may still be carrying the change out: read status and the audit before retrying",
    "http-504": "the function app may still be carrying the change out: read status and the audit before retrying",
}


def run_remote_read(url: str, command: str, args: dict[str, Any], *, as_json: bool) -> int:
    """A read-only command the app runs with its own identity: its text (or JSON result) and exit code."""
    admin = AdminClient(url, operator_token())
    try:
        answer = admin.plan(command, args)
    finally:
        admin.close()
    if as_json:
        typer.echo(json.dumps(answer.get("result"), indent=2, default=str))
    else:
        typer.echo(answer.get("text", ""))
    return int(answer.get("exitCode", ExitCode.FAILED))


def run_remote(
    url: str,
    command: str,
    args: dict[str, Any],
    *,
    title: Callable[[list[dict[str, Any]]], str],
    phrase: Callable[[list[dict[str, Any]]], str] | None,
    yes: bool,
    export_to: Path | None,
    label: str,
    as_json: bool,
    nothing_matched: str | None = None,
    plan_only: bool = False,
) -> int:
    """Plan remotely, decide locally, apply remotely; the exit code the local command would end with.

    ``phrase`` None means the command does not ask (the list is still shown). ``nothing_matched``: an empty list
    ends the command with exit 3 and that sentence, as the local replay and purge do.
    """
    admin = AdminClient(url, operator_token())
    try:
        planned = admin.plan(command, args)
        rows = planned.get("rows")
        columns = planned.get("columns", [])
        if nothing_matched is not None and not rows:
            Console(stderr=True, soft_wrap=True).print(
                f"nothing matched: {nothing_matched}", markup=False, highlight=False
            )
            return ExitCode.NOTHING_MATCHED
        if rows:
            decide(
                title(rows),
                rows,
                columns,
                phrase(rows) if phrase else "",
                yes=yes or phrase is None or plan_only,
                export_to=export_to,
                command=label,
                as_json=as_json,
            )
        if plan_only:
            if as_json:
                typer.echo(json.dumps(planned, indent=2, default=str))
            return ExitCode.OK
        applied = admin.apply(command, args, planned["digest"])
    finally:
        admin.close()
    if as_json:
        typer.echo(json.dumps(applied.get("result"), indent=2, default=str))
    else:
        typer.echo(applied.get("text", ""))
    return int(applied.get("exitCode", ExitCode.FAILED))
