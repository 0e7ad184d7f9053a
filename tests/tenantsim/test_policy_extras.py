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


def test_direct_federation_is_created_and_listed_with_its_domains_and_absorbed(graph):
    """POST through the type-cast segment; the list answers each configuration with its domains, as the list
    example shows; the SDK absorbs the collection."""
    created = graph.request("POST", FED, roles=FED_WRITE, json=ADATUM)
    assert created.status_code == 201
    listed = graph.get(FED, roles=("IdentityProvider.Read.All",)).json()
    # The SDK has no type-cast collection; the base collection resolves each item by its @odata.type.
    parsed = assert_absorbed(listed, IdentityProviderBaseCollectionResponse)
    assert [d.id for d in parsed.value[0].domains] == ["adatum.com"]


def test_the_federation_for_a_domain_is_found_with_the_documented_domains_filter(graph):
    """`$filter=domains/any(x: x/id eq 'domain')` answers the configuration holding that domain, or none."""
    config_id = graph.request("POST", FED, roles=FED_WRITE, json=ADATUM).json()["id"]
    roles = ("IdentityProvider.Read.All",)
    filtered = graph.get(FED, roles=roles, params={"$filter": "domains/any(x: x/id eq 'adatum.com')"}).json()
    assert [c["id"] for c in filtered["value"]] == [config_id]
    assert [d["id"] for d in filtered["value"][0]["domains"]] == ["adatum.com"]
    other = graph.get(FED, roles=roles, params={"$filter": "domains/any(x: x/id eq 'proseware.com')"}).json()
    assert other["value"] == []
    assert graph.get(FED, roles=roles, params={"$filter": "displayName eq 'Adatum'"}).status_code == 400


def test_expand_on_federation_configurations_is_refused_unless_the_knob_ignores_it(graph, admin):
    """No page documents $expand here: 400 by default; federationExpand=ignore answers as without it."""
    graph.request("POST", FED, roles=FED_WRITE, json=ADATUM)
    roles = ("IdentityProvider.Read.All",)
    refused = graph.get(FED, roles=roles, params={"$expand": "domains"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "Request_UnsupportedQuery"
    admin.configure(federationExpand="ignore")
    assert graph.get(FED, roles=roles, params={"$expand": "domains"}).json() == graph.get(FED, roles=roles).json()


def test_without_inline_domains_a_configuration_domains_are_read_from_their_own_collection(graph, admin):
    """federationDomainsInline=false: listed configurations carry no domains; the list-domains path (type cast
    before the id) answers them."""
    admin.configure(federationDomainsInline=False)
    config_id = graph.request("POST", FED, roles=FED_WRITE, json=ADATUM).json()["id"]
    roles = ("IdentityProvider.Read.All",)
    assert "domains" not in graph.get(FED, roles=roles).json()["value"][0]
    domains = graph.get(f"{FED}/{config_id}/domains", roles=roles).json()["value"]
    assert [d["id"] for d in domains] == ["adatum.com"]


def test_federation_refuses_entra_verified_and_already_federated_domains(graph):
    """A domain an Entra tenant verifies is 400; a domain in another configuration is 409."""
    entra = {**ADATUM, "domains": [{"id": "fabrikam.com"}]}
    assert graph.request("POST", FED, roles=FED_WRITE, json=entra).status_code == 400
    assert graph.request("POST", FED, roles=FED_WRITE, json=ADATUM).status_code == 201
    assert graph.request("POST", FED, roles=FED_WRITE, json=ADATUM).status_code == 409


def test_federation_update_domains_and_delete(graph):
    """PATCH answers 200 with the updated configuration (at the item or the update page's type-cast path);
    POST .../domains adds one; DELETE 204 then 404; writes need the permission."""
    config_id = graph.request("POST", FED, roles=FED_WRITE, json=ADATUM).json()["id"]
    item = f"/v1.0/directory/federationConfigurations/{config_id}"
    patched = graph.request("PATCH", item, roles=FED_WRITE, json={"issuerUri": "https://new/"})
    assert patched.status_code == 200 and patched.json()["issuerUri"] == "https://new/"
    assert [d["id"] for d in patched.json()["domains"]] == ["adatum.com"]
    renamed = graph.request("PATCH", f"{FED}/{config_id}", roles=FED_WRITE, json={"displayName": "Adatum SAML"})
    assert renamed.status_code == 200 and renamed.json()["displayName"] == "Adatum SAML"
    assert graph.get(item, roles=FED_WRITE).json()["issuerUri"] == "https://new/"
    domains = f"{item}/microsoft.graph.samlOrWsFedExternalDomainFederation/domains"
    assert graph.request("POST", domains, roles=FED_WRITE, json={"id": "proseware.com"}).status_code == 201
    assert [d["id"] for d in graph.get(domains, roles=FED_WRITE).json()["value"]] == ["adatum.com", "proseware.com"]
    assert graph.request("POST", FED, roles=("Domain.Read.All",), json=ADATUM).status_code == 403
    assert graph.request("DELETE", item, roles=FED_WRITE).status_code == 204
    assert graph.get(item, roles=FED_WRITE).status_code == 404
