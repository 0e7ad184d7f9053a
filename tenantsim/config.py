"""Runtime knobs of the simulator, changeable through PUT /_tenantsim/config."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from tenantsim.errors import bad_request
from tenantsim.tokens import DEFAULT_APP_ID


@dataclass(slots=True)
class SimConfig:
    # Seconds during which a just-created user answers 404 by id and is left out of queries.
    replication_delay_seconds: float = 0.0
    throttling_enabled: bool = True
    # 10 means every throttling window (and so every Retry-After) is ten times shorter.
    time_compression: float = 1.0
    # Multiplies every quota; tests use a small value to reach a limit with a few requests.
    quota_scale: float = 1.0
    # Max page size with signInActivity selected: 500 in the current doc, 120 in older versions.
    sign_in_activity_page_cap: int = 500
    # Apps whose service principal holds the Guest Inviter role (matters for allowInvitesFrom
    # adminsAndGuestInviters, where app-only invitations need that role).
    guest_inviter_app_ids: list[str] = field(default_factory=lambda: [DEFAULT_APP_ID])
    # How far the tenant's clock runs ahead of the wall clock: timestamps, access review instances and
    # access package assignment expiry follow it (tokens, throttling and replication delay do not).
    clock_offset_seconds: float = 0.0
    # Adding a sponsor that is already there: user-post-sponsors.md is silent. False (default) answers 400
    # Request_BadRequest with the directory's "added object references already exist" message, as Graph is
    # observed to answer for references; True answers 204 as for a new reference.
    duplicate_sponsor_no_content: bool = False
    # Permanently deleting a user from deletedItems with an application permission: the delete page says not
    # supported (default False: 403); the permissions changelog (Dec 2024) names User.DeleteRestore.All as its
    # least privileged permission (True).
    deleted_user_purge_app_only: bool = False
    # json-batching.md: a batch's responses may come in another order than its requests. False (default)
    # answers them in reverse request order, so clients must correlate by id; True keeps the request order.
    batch_responses_in_request_order: bool = False

    def update(self, changes: dict[str, Any]) -> None:
        known = {f.name: f for f in fields(self)}
        for camel, value in changes.items():
            name = _snake(camel)
            if name not in known:
                raise bad_request(f"Unknown tenantsim config setting '{camel}'.")
            current = getattr(self, name)
            if isinstance(current, bool):
                if not isinstance(value, bool):
                    raise bad_request(f"'{camel}' must be a boolean.")
            elif isinstance(current, int | float):
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise bad_request(f"'{camel}' must be a non-negative number.")
                value = type(current)(value)
            elif isinstance(current, list) and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise bad_request(f"'{camel}' must be a list of strings.")
            setattr(self, name, value)
        if self.time_compression <= 0:
            raise bad_request("'timeCompression' must be positive.")

    def as_json(self) -> dict[str, Any]:
        return {_camel(k): v for k, v in asdict(self).items()}


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)
