"""The simulated tenant's state: users with the indexes listing needs, deleted items, groups and policies.

Users are kept in creation order; each has a sequence number, and a page token is the last sequence number
served, so a listing of 100,000 guests walks the index once (bisect to resume) instead of re-filtering.
"""

from __future__ import annotations

import bisect
import copy
import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tenantsim.seed import service_default_policy


@dataclass(slots=True)
class UserRecord:
    seq: int
    data: dict[str, Any]
    visible_after: float = 0.0


def addresses_of(user: dict[str, Any]) -> set[str]:
    """Every address an object owns in the directory: mail, otherMails and proxyAddresses (any prefix)."""
    found: set[str] = set()
    if user.get("mail"):
        found.add(user["mail"].lower())
    for other in user.get("otherMails") or ():
        found.add(other.lower())
    for proxy in user.get("proxyAddresses") or ():
        found.add(proxy.split(":", 1)[-1].lower())
    return found


class Directory:
    def __init__(self, document: dict[str, Any]) -> None:
        """Takes ownership of `document` (no copy: at 100,000 users a copy costs seconds)."""
        self.tenant: dict[str, Any] = dict(document["tenant"])
        self.tenant_id: str = self.tenant["id"]
        self.initial_domain: str = self.tenant["initialDomain"]
        self.users: dict[str, UserRecord] = {}
        self._seq = 0
        self._order: list[int] = []
        self._guest_order: list[int] = []
        self._by_seq: dict[int, str] = {}
        self._addresses: dict[str, set[str]] = {}
        self.deleted: dict[str, UserRecord] = {}
        # (deletedDateTime, id) of every soft-deleted user, earliest first: what retention purges next.
        self._deletions: list[tuple[str, str]] = []
        self.sponsors: dict[str, list[str]] = {k: list(v) for k, v in document.get("sponsors", {}).items()}
        self.managers: dict[str, str] = dict(document.get("managers", {}))  # user id -> its manager's id
        self.groups: dict[str, dict[str, Any]] = {g["id"]: copy.deepcopy(g) for g in document.get("groups", [])}
        self.service_principals: list[dict[str, Any]] = copy.deepcopy(document.get("servicePrincipals", []))
        self.tenants: dict[str, dict[str, Any]] = {t["tenantId"]: dict(t) for t in document.get("externalTenants", [])}
        self.domains: dict[str, dict[str, Any]] = {
            d.lower(): dict(info) for d, info in document.get("domains", {}).items()
        }
        policies = document.get("policies", {})
        self.xtap_default: dict[str, Any] = copy.deepcopy(
            policies.get("crossTenantAccessDefault") or service_default_policy()
        )
        self.xtap_partners: dict[str, dict[str, Any]] = {
            p["tenantId"]: copy.deepcopy(p) for p in policies.get("crossTenantAccessPartners", [])
        }
        # Each partner's user synchronization policy (its identitySynchronization relationship), by tenant id.
        self.xtap_identity_sync: dict[str, dict[str, Any]] = {
            p["tenantId"]: copy.deepcopy(p) for p in policies.get("crossTenantIdentitySync", [])
        }
        self.authorization_policy: dict[str, Any] = copy.deepcopy(policies["authorizationPolicy"])
        self.b2b_policies: dict[str, dict[str, Any]] = {
            p["id"]: copy.deepcopy(p) for p in policies.get("b2bManagementPolicies", [])
        }
        for user in document.get("users", []):
            self.add_user(user)
        for user in document.get("deletedItems", []):
            self._seq += 1
            self.deleted[user["id"]] = UserRecord(self._seq, user)
            if user.get("deletedDateTime"):
                heapq.heappush(self._deletions, (_instant(user["deletedDateTime"]), user["id"]))

    # --- users ------------------------------------------------------------------------------------

    def add_user(self, data: dict[str, Any], visible_after: float = 0.0, seq: int | None = None) -> UserRecord:
        if seq is None:
            self._seq += 1
            seq = self._seq
        record = UserRecord(seq, data, visible_after)
        self.users[data["id"]] = record
        self._by_seq[seq] = data["id"]
        _insert_sorted(self._order, seq)
        if data.get("userType") == "Guest":
            _insert_sorted(self._guest_order, seq)
        self._index_addresses(data["id"], addresses_of(data))
        return record

    def remove_user(self, user_id: str) -> UserRecord:
        record = self.users.pop(user_id)
        del self._by_seq[record.seq]
        _remove_sorted(self._order, record.seq)
        _remove_sorted(self._guest_order, record.seq)
        self._unindex_addresses(user_id, addresses_of(record.data))
        return record

    def update_user(self, user_id: str, changes: dict[str, Any]) -> None:
        """Apply property changes, keeping the address and guest indexes right."""
        record = self.users[user_id]
        before = addresses_of(record.data)
        was_guest = record.data.get("userType") == "Guest"
        record.data.update(changes)
        self._unindex_addresses(user_id, before)
        self._index_addresses(user_id, addresses_of(record.data))
        is_guest = record.data.get("userType") == "Guest"
        if was_guest and not is_guest:
            _remove_sorted(self._guest_order, record.seq)
        elif is_guest and not was_guest:
            bisect.insort(self._guest_order, record.seq)

    def owners_of_address(self, address: str) -> list[UserRecord]:
        return [self.users[i] for i in sorted(self._addresses.get(address.lower(), ()))]

    def guest_count(self) -> int:
        return len(self._guest_order)

    def scan(self, after_seq: int, guests_only: bool) -> Iterator[UserRecord]:
        """Users in creation order, starting after `after_seq`."""
        order = self._guest_order if guests_only else self._order
        for position in range(bisect.bisect_right(order, after_seq), len(order)):
            seq = order[position]
            yield self.users[self._by_seq[seq]]

    def _index_addresses(self, user_id: str, addresses: set[str]) -> None:
        for address in addresses:
            self._addresses.setdefault(address, set()).add(user_id)

    def _unindex_addresses(self, user_id: str, addresses: set[str]) -> None:
        for address in addresses:
            owners = self._addresses.get(address)
            if owners is not None:
                owners.discard(user_id)
                if not owners:
                    del self._addresses[address]

    # --- soft delete ------------------------------------------------------------------------------

    def soft_delete(self, user_id: str, deleted_at: str) -> None:
        record = self.remove_user(user_id)
        record.data["deletedDateTime"] = deleted_at
        self.deleted[user_id] = record
        heapq.heappush(self._deletions, (_instant(deleted_at), user_id))

    def purge_expired(self, now: datetime, retention: timedelta) -> list[str]:
        """Permanently delete every user soft-deleted at or before ``now - retention``; their ids."""
        cutoff = _instant((now - retention).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        purged: list[str] = []
        while self._deletions and self._deletions[0][0] <= cutoff:
            deleted_at, user_id = heapq.heappop(self._deletions)
            record = self.deleted.get(user_id)
            # Restored (and perhaps deleted again) since this entry was pushed: a later entry decides.
            if record is None or _instant(record.data.get("deletedDateTime") or "") != deleted_at:
                continue
            del self.deleted[user_id]
            self.sponsors.pop(user_id, None)
            purged.append(user_id)
        return purged

    def restore(self, user_id: str) -> UserRecord:
        record = self.deleted.pop(user_id)
        record.data["deletedDateTime"] = None
        return self.add_user(record.data, seq=record.seq)

    # --- policies ---------------------------------------------------------------------------------

    def organization_default_b2b_policy(self) -> dict[str, Any] | None:
        return next((p for p in self.b2b_policies.values() if p.get("isOrganizationDefault")), None)

    def snapshot(self) -> dict[str, Any]:
        return {
            "tenant": copy.deepcopy(self.tenant),
            "users": [copy.deepcopy(self.users[self._by_seq[s]].data) for s in self._order],
            "deletedItems": [copy.deepcopy(r.data) for r in self.deleted.values()],
            "sponsors": copy.deepcopy(self.sponsors),
            "managers": dict(self.managers),
            "groups": copy.deepcopy(list(self.groups.values())),
            "servicePrincipals": copy.deepcopy(self.service_principals),
            "externalTenants": copy.deepcopy(list(self.tenants.values())),
            "domains": copy.deepcopy(self.domains),
            "policies": {
                "crossTenantAccessDefault": copy.deepcopy(self.xtap_default),
                "crossTenantAccessPartners": copy.deepcopy(list(self.xtap_partners.values())),
                "crossTenantIdentitySync": copy.deepcopy(list(self.xtap_identity_sync.values())),
                "authorizationPolicy": copy.deepcopy(self.authorization_policy),
                "b2bManagementPolicies": copy.deepcopy(list(self.b2b_policies.values())),
            },
        }


def _instant(value: str) -> str:
    """A deletedDateTime as a sortable UTC text (second precision), whatever offset form it was written in."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _insert_sorted(order: list[int], seq: int) -> None:
    if not order or order[-1] < seq:
        order.append(seq)  # the common case: a new user is the newest
    else:
        bisect.insort(order, seq)


def _remove_sorted(order: list[int], seq: int) -> None:
    position = bisect.bisect_left(order, seq)
    if position < len(order) and order[position] == seq:
        del order[position]
