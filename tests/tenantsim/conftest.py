"""One in-process tenantsim for the module's tests, reseeded and reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tenantsim.client import TenantSimAdmin
from tenantsim.server import TenantSimServer

GUESTS = 40
READ_ROLES = ("User.Read.All", "AuditLog.Read.All")
DEFAULT_CONFIG = {
    "replicationDelaySeconds": 0,
    "throttlingEnabled": False,
    "timeCompression": 1,
    "quotaScale": 1,
    "signInActivityPageCap": 500,
    "guestInviterAppIds": [],
    "appOnlyInvitesNeedGuestInviter": True,
    "entraIdPremium": True,
    "unsetRedemptionOrderAsNull": False,
    "clockOffsetSeconds": 0,
    "reviewQueryVersionPrefix": True,
    "reviewNoEndAsNumbered": True,
    "reviewRelativeOwnersOnSingleGroup": False,
    "resetRedemptionRewritesAddresses": False,
    "userReadUpdateCoversMail": False,
    "assignmentTargetUnreplicated": "notFound",
    "assignmentRequestProcessing": "onRead",
    "assignmentRequestWhileOpen": "accept",
    "accessPackagePoliciesExpand": "expand",
    "accessPackageListFilters": "displayName",
    "connectedOrganizationCreateSources": "empty",
    "federationExpand": "refuse",
    "federationDomainsInline": True,
    "tenantLookupDomains": "primary",
    "duplicateSponsorNoContent": False,
    "deletedUserPurgeAppOnly": False,
    "deletedItemRetentionDays": 30,
    "restoreNeedsUserReadWriteAll": False,
    "expandNestedSelect": "honour",
    "expandWithSignInActivity": True,
    "batchResponsesInRequestOrder": False,
    "idleConnectionSeconds": 30,
    "apiConnectorConfigurationExpand": "expand",
    "signInListNeedsDirectoryRead": True,
    "partnerNullSetting": "inherit",
    "guestLifecyclePolicyLimit": 10,
    "lifecyclePolicyPortalRanges": True,
    "lifecyclePolicyExcludedGroups": "bind",
    "lifecyclePolicyRulesInline": True,
    "lifecyclePolicyRuleMethods": "none",
    "lifecyclePolicyNewPriority": "lowest",
    "lifecyclePolicyReportBeforeProcessing": "notFound",
    "lifecyclePolicyUpdateUnlisted": "accept",
    "lifecyclePolicyInactivitySignIns": "interactive",
}


@pytest.fixture(scope="session")
def server() -> Iterator[TenantSimServer]:
    with TenantSimServer(guests=GUESTS) as running:
        yield running


@pytest.fixture
def admin(server: TenantSimServer) -> Iterator[TenantSimAdmin]:
    with TenantSimAdmin(server.url) as client:
        client.seed(guests=GUESTS)
        client.configure(**DEFAULT_CONFIG)
        client.clear_faults()
        client.reset_counters()
        yield client


class Graph:
    """httpx against the simulator's Graph with a token holding `roles`."""

    def __init__(self, server: TenantSimServer, admin: TenantSimAdmin) -> None:
        self.server = server
        self.admin = admin
        self._http = httpx.Client(base_url=server.url, timeout=10)
        self._tokens: dict[tuple, dict[str, str]] = {}

    def as_(self, *roles: str, **token: str) -> dict[str, str]:
        key = (roles, tuple(sorted(token.items())))
        if key not in self._tokens:
            self._tokens[key] = self.admin.auth_headers(list(roles), **token)
        return self._tokens[key]

    def request(self, method: str, path: str, roles: tuple[str, ...] = READ_ROLES, **kwargs) -> httpx.Response:
        headers = {**self.as_(*roles), **kwargs.pop("headers", {})}
        return self._http.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def close(self) -> None:
        self._http.close()


@pytest.fixture
def graph(server: TenantSimServer, admin: TenantSimAdmin) -> Iterator[Graph]:
    client = Graph(server, admin)
    yield client
    client.close()


def guests(admin: TenantSimAdmin) -> list[dict]:
    return [u for u in admin.snapshot()["users"] if u["userType"] == "Guest"]


def members(admin: TenantSimAdmin) -> list[dict]:
    return [u for u in admin.snapshot()["users"] if u["userType"] == "Member"]
