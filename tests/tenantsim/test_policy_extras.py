"""tenantsim's Conditional Access policies (with the 1 request/s limit) and SAML/WS-Fed direct federation."""

from __future__ import annotations

import time

from msgraph.generated.models.conditional_access_policy import ConditionalAccessPolicy
from msgraph.generated.models.conditional_access_policy_collection_response import (
    ConditionalAccessPolicyCollectionResponse,
)
from msgraph.generated.models.identity_provider_base_collection_response import IdentityProviderBaseCollectionResponse

from tests.tenantsim.sdk_models import assert_absorbed

CA = "/v1.0/identity/conditionalAccess/policies"
CA_WRITE = ("Policy.ReadWrite.ConditionalAccess", "Policy.Read.All", "Application.Read.All")
FED = "/v1.0/directory/federationConfigurations/microsoft.graph.samlOrWsFedExternalDomainFederation"
FED_WRITE = ("IdentityProvider.ReadWrite.All",)
GUEST_MFA = {
    "displayName": "Guests: require MFA",
    "state": "enabled",
    "conditions": {
        "users": {
            "includeGuestsOrExternalUsers": {
                "guestOrExternalUserTypes": "b2bCollaborationGuest,b2bCollaborationMember",
                "externalTenants": {
                    "@odata.type": "#microsoft.graph.conditionalAccessAllExternalTenants",
                    "membershipKind": "all",
                },
            }
        },
        "applications": {"includeApplications": ["All"]},
        "clientAppTypes": ["all"],
    },
    "grantControls": {"operator": "OR", "builtInControls": ["mfa"]},
}
ADATUM = {
    "displayName": "Adatum",
    "issuerUri": "https://sts.adatum.com/",
    "passiveSignInUri": "https://sts.adatum.com/signin",
    "preferredAuthenticationProtocol": "saml",
    "signingCertificate": "MIIBszCCAVmgAwIBAgIU",
    "domains": [{"@odata.type": "microsoft.graph.externalDomainName", "id": "adatum.com"}],
}


def test_conditional_access_policies_are_created_listed_and_absorbed_by_the_sdk(graph):
    """POST 201 with an id; the list and the entity deserialize into the SDK models with nothing left over."""
    created = graph.request("POST", CA, roles=CA_WRITE, json=GUEST_MFA)
    assert created.status_code == 201 and created.json()["id"]
    assert_absorbed(created.json(), ConditionalAccessPolicy)
    listed = graph.get(CA, roles=("Policy.Read.All",)).json()
    parsed = assert_absorbed(listed, ConditionalAccessPolicyCollectionResponse)
    assert [p.display_name for p in parsed.value] == ["Guests: require MFA"]


def test_conditional_access_needs_its_permissions(graph):
    """Reading needs Policy.Read.All; writing needs Policy.ReadWrite.ConditionalAccess with Policy.Read.All and
    Application.Read.All (conditionalaccessroot-post-policies.md)."""
    assert graph.get(CA, roles=("User.Read.All",)).status_code == 403
    assert graph.request("POST", CA, roles=("Policy.ReadWrite.ConditionalAccess",), json=GUEST_MFA).status_code == 403
    without_apps = ("Policy.ReadWrite.ConditionalAccess", "Policy.Read.All")
    assert graph.request("POST", CA, roles=without_apps, json=GUEST_MFA).status_code == 403


def test_conditional_access_allows_one_request_per_second_and_throttles_without_retry_after(graph, admin):
    """A second request within the second is 429 TooManyRequests with no Retry-After; after a second it passes."""
    admin.configure(throttlingEnabled=True, timeCompression=10)  # a 0.1 s window keeps the test fast
    first = graph.get(CA, roles=("Policy.Read.All",))
    second = graph.get(CA, roles=("Policy.Read.All",))
    assert first.status_code == 200
    assert second.status_code == 429 and second.json()["error"]["code"] == "TooManyRequests"
    assert "retry-after" not in {name.lower() for name in second.headers}
    time.sleep(0.15)
    assert graph.get(CA, roles=("Policy.Read.All",)).status_code == 200


def test_conditional_access_is_not_limited_when_throttling_is_off(graph):
    """The limit follows the simulator's throttling switch (off in this module's default config)."""
    assert all(graph.get(CA, roles=("Policy.Read.All",)).status_code == 200 for _ in range(3))


def test_direct_federation_is_created_listed_with_its_domains_and_absorbed(graph):
    """POST through the type-cast segment; $expand=domains lists them; the SDK absorbs the collection."""
    created = graph.request("POST", FED, roles=FED_WRITE, json=ADATUM)
    assert created.status_code == 201
    config_id = created.json()["id"]
    listed = graph.get(f"{FED}?$expand=domains", roles=("Domain.Read.All",)).json()
    # The SDK has no type-cast collection; the base collection resolves each item by its @odata.type.
    parsed = assert_absorbed(listed, IdentityProviderBaseCollectionResponse)
    assert [d.id for d in parsed.value[0].domains] == ["adatum.com"]
    unexpanded = graph.get(FED, roles=("Domain.Read.All",)).json()["value"][0]
    assert "domains" not in unexpanded
    filtered = graph.get(f"{FED}?$filter=domains/any(x: x/id eq 'adatum.com')", roles=("Domain.Read.All",))
    assert [c["id"] for c in filtered.json()["value"]] == [config_id]


def test_federation_refuses_entra_verified_and_already_federated_domains(graph):
    """A domain an Entra tenant verifies is 400; a domain in another configuration is 409."""
    entra = {**ADATUM, "domains": [{"id": "fabrikam.com"}]}
    assert graph.request("POST", FED, roles=FED_WRITE, json=entra).status_code == 400
    assert graph.request("POST", FED, roles=FED_WRITE, json=ADATUM).status_code == 201
    assert graph.request("POST", FED, roles=FED_WRITE, json=ADATUM).status_code == 409


def test_federation_update_domains_and_delete(graph):
    """PATCH 204 changes a field; POST .../domains adds one; DELETE 204 then 404; writes need the permission."""
    config_id = graph.request("POST", FED, roles=FED_WRITE, json=ADATUM).json()["id"]
    item = f"/v1.0/directory/federationConfigurations/{config_id}"
    assert graph.request("PATCH", item, roles=FED_WRITE, json={"issuerUri": "https://new/"}).status_code == 204
    assert graph.get(item, roles=FED_WRITE).json()["issuerUri"] == "https://new/"
    domains = f"{item}/microsoft.graph.samlOrWsFedExternalDomainFederation/domains"
    assert graph.request("POST", domains, roles=FED_WRITE, json={"id": "proseware.com"}).status_code == 201
    assert [d["id"] for d in graph.get(domains, roles=FED_WRITE).json()["value"]] == ["adatum.com", "proseware.com"]
    assert graph.request("POST", FED, roles=("Domain.Read.All",), json=ADATUM).status_code == 403
    assert graph.request("DELETE", item, roles=FED_WRITE).status_code == 204
    assert graph.get(item, roles=FED_WRITE).status_code == 404
