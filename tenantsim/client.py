"""TenantSimAdmin: the inspection API (/_tenantsim) for tests, over httpx."""

from __future__ import annotations

from typing import Any

import httpx


class TenantSimAdmin:
    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=f"{self.base_url}/_tenantsim", timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> TenantSimAdmin:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self._http.request(method, path, json=body)
        response.raise_for_status()
        return response.json() if response.content else None

    def token(
        self,
        roles: list[str] | tuple[str, ...],
        app_id: str | None = None,
        tenant_id: str | None = None,
        lifetime_seconds: int = 3600,
    ) -> str:
        body: dict[str, Any] = {"roles": list(roles), "lifetimeSeconds": lifetime_seconds}
        if app_id:
            body["appId"] = app_id
        if tenant_id:
            body["tenantId"] = tenant_id
        return self._call("POST", "/token", body)["access_token"]

    def auth_headers(self, roles: list[str] | tuple[str, ...], **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(roles, **kwargs)}"}

    def seed(
        self,
        document: dict[str, Any] | None = None,
        *,
        builtin: str = "fresh",
        guests: int = 40,
        random_seed: int = 0,
        anchor: str | None = None,
    ) -> dict[str, Any]:
        if document is not None:
            return self._call("POST", "/seed", {"document": document})
        body: dict[str, Any] = {"builtin": builtin, "guests": guests, "randomSeed": random_seed}
        if anchor:
            body["anchor"] = anchor
        return self._call("POST", "/seed", body)

    def snapshot(self) -> dict[str, Any]:
        return self._call("GET", "/snapshot")

    def requests(self) -> list[dict[str, Any]]:
        return self._call("GET", "/requests")["value"]

    def counters(self) -> dict[str, Any]:
        return self._call("GET", "/counters")

    def reset_counters(self) -> None:
        self._call("POST", "/reset-counters")

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """e.g. set_faults(rates={"503": 0.2}, seed=7, latencyMs=5, pathPattern="/users")."""
        return self._call("PUT", "/faults", faults)

    def clear_faults(self) -> dict[str, Any]:
        return self._call("PUT", "/faults", {})

    def configure(self, **settings: Any) -> dict[str, Any]:
        """camelCase keys: replicationDelaySeconds, throttlingEnabled, timeCompression, quotaScale,
        signInActivityPageCap, guestInviterAppIds, appOnlyInvitesNeedGuestInviter, entraIdPremium,
        clockOffsetSeconds."""
        return self._call("PUT", "/config", settings)

    def config(self) -> dict[str, Any]:
        return self._call("GET", "/config")

    def set_identity_provider(
        self, domain: str, identity_provider: str, tenant_id: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        body = {"domain": domain, "identityProvider": identity_provider, "tenantId": tenant_id, **extra}
        return self._call("PUT", "/identity-provider", body)

    def patch_user(self, user_id: str, **changes: Any) -> dict[str, Any]:
        return self._call("PATCH", f"/users/{user_id}", changes)

    def add_sign_ins(self, *events: dict[str, Any]) -> list[dict[str, Any]]:
        return self._call("POST", "/sign-ins", {"signIns": list(events)})["value"]

    def add_group_member(self, group_id: str, member_id: str) -> dict[str, Any]:
        return self._call("POST", f"/groups/{group_id}/members", {"id": member_id})

    def process_lifecycle_policies(self, policy_id: str | None = None) -> list[str]:
        """Run the daily evaluation of the enabled guest lifecycle policies now; the ids processed."""
        body = {"policyId": policy_id} if policy_id else {}
        return self._call("POST", "/lifecycle-policies/process", body)["processed"]

    def attest_guest(self, user_id: str, attested_date_time: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"userId": user_id}
        if attested_date_time:
            body["attestedDateTime"] = attested_date_time
        return self._call("POST", "/lifecycle-policies/attestations", body)
