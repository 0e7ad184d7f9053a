"""Guest identity providers on Microsoft Graph: the email one-time passcode method and social federation.

Pages: emailauthenticationmethodconfiguration-get/-update.md (Policy.Read.All to read,
Policy.ReadWrite.AuthenticationMethod to write) and identitycontainer-list/-post-identityproviders.md
(IdentityProvider.Read.All / IdentityProvider.ReadWrite.All). The redemption order lives on the default
cross-tenant policy and is written through graph.policies.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote as url_quote

from kiota_abstractions.method import Method
from msgraph import GraphServiceClient

from graph.policies import GraphPolicies
from graph.raw import RawGraph

EMAIL = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/email"
PROVIDERS = "/identity/identityProviders"


class GraphGuestIdentityProviders:
    def __init__(self, client: GraphServiceClient, policies: GraphPolicies) -> None:
        self._raw = RawGraph(client)
        self._v1 = self._raw.v1
        self._policies = policies

    async def get_email_otp(self) -> dict[str, Any]:
        return await self._raw.send(Method.GET, f"{self._v1}{EMAIL}")

    async def update_email_otp(self, body: dict[str, Any]) -> None:
        await self._raw.send(Method.PATCH, f"{self._v1}{EMAIL}", body)

    async def list_identity_providers(self) -> list[dict[str, Any]]:
        return await self._raw.collection(f"{self._v1}{PROVIDERS}")

    async def create_identity_provider(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._raw.send(Method.POST, f"{self._v1}{PROVIDERS}", body)

    async def update_identity_provider(self, provider_id: str, body: dict[str, Any]) -> None:
        await self._raw.send(Method.PATCH, f"{self._v1}{PROVIDERS}/{url_quote(provider_id, safe='')}", body)

    async def delete_identity_provider(self, provider_id: str) -> None:
        await self._raw.send(Method.DELETE, f"{self._v1}{PROVIDERS}/{url_quote(provider_id, safe='')}")

    async def update_default(self, body: dict[str, Any]) -> None:
        await self._policies.update_default(body)
