"""Deep links into the Microsoft Entra admin center for the things the report names.

The admin center lives at https://entra.microsoft.com (Microsoft Learn, "Microsoft Entra admin center":
https://learn.microsoft.com/en-us/entra/fundamentals/entra-admin-center). Its blade addresses after ``#view/``
are the portal's own navigation, not a documented API: they are kept here, in one place, so a change of the
portal is one edit. The tenant id in the path makes the portal open the right directory for an admin who can
reach several. Every part taken from data is percent-encoded; the page escapes the whole address again.
"""

from __future__ import annotations

from urllib.parse import quote

ADMIN_CENTER = "https://entra.microsoft.com"


def _base(tenant_id: str) -> str:
    return f"{ADMIN_CENTER}/{quote(tenant_id, safe='')}/#view"


def guest_link(tenant_id: str, object_id: str) -> str:
    """The guest's overview (properties, sign-in, sponsors, access packages are one click away)."""
    blade = "Microsoft_AAD_UsersAndTenants/UserProfileMenuBlade/~/overview/userId"
    return f"{_base(tenant_id)}/{blade}/{quote(object_id, safe='')}"


def cross_tenant_access_link(tenant_id: str) -> str:
    """External Identities > Cross-tenant access settings: the default and the per-partner policies.

    The portal has no stable address for one partner's row, so the report puts the partner's tenant id beside
    this link (the page filters its organizational settings by tenant id)."""
    return f"{_base(tenant_id)}/Microsoft_AAD_IAM/CompanyRelationshipsMenuBlade/~/CrossTenantAccessSettings"


def external_collaboration_link(tenant_id: str) -> str:
    """External Identities > External collaboration settings: who may invite, the domain allow/block list."""
    return f"{_base(tenant_id)}/Microsoft_AAD_IAM/CompanyRelationshipsMenuBlade/~/Settings"
