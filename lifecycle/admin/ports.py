"""What the admin endpoint needs from the outside: the commands it may run and the services they run on.

The commands are built in the outer ring (app.admin) from the very code the local command line runs, so a
change requested remotely passes the same planners, the same safety gate and the same audit rows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from lifecycle.services import Services

Rows = list[dict[str, Any]]


class AdminInputError(Exception):
    """The request names a command or arguments the endpoint does not accept (HTTP 400)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class AdminRefused(Exception):
    """The command will not act in the tenant's present state, e.g. a run that is not braked (HTTP 409)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Carried:
    """A command's outcome: the exit code the local command would end with, its text, and its JSON result.

    ``run_id`` names the run whose own audit rows hold the writes (a drift run), so the operator's
    ``admin.applied`` row leads to them."""

    exit_code: int
    text: str
    result: Any = field(default=None)
    run_id: str | None = None


class AdminCommand(Protocol):
    name: str
    columns: tuple[str, ...]
    # A read-only command (the doctor, as the app) answers its result at the plan step and has no apply.
    read_only: bool

    def parse(self, args: object) -> dict[str, Any]:
        """The arguments, checked and normalised (defaults filled in); AdminInputError when they are not usable."""
        ...

    async def changes(self, services: Services, args: dict[str, Any]) -> Rows | None:
        """Who and what the command changes, by name; None when a guardrail refuses the whole plan."""
        ...

    async def carry_out(self, services: Services, args: dict[str, Any], rows: Rows | None, actor: str) -> Carried:
        """Act on exactly ``rows`` (the plan the operator confirmed), recording ``actor`` as who asked."""
        ...


@dataclass(frozen=True, slots=True)
class AdminPorts:
    commands: Mapping[str, AdminCommand]
    services: Callable[[], Awaitable[Services]]
    role: str
    max_body_bytes: int = 16 * 1024
