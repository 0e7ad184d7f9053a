"""The sign-up connector's registration on Microsoft Graph: API connectors and the user flows they serve.

JSON in, JSON out, like graph.policies: the drift planner compares Graph's own shapes. Pages:
identityapiconnector-create/-list/-update.md (APIConnectors.ReadWrite.All) and
b2xidentityuserflow-get/put-apiconnectorconfiguration.md (IdentityUserFlow.ReadWrite.All).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote as url_quote

from kiota_abstractions.method import Method
from msgraph import GraphServiceClient

from graph.raw import RawGraph
from lifecycle.errors import BadRequestError

CONNECTORS = "/identity/apiConnectors"
USER_FLOWS = "/identity/b2xUserFlows"
STEPS = ("postFederationSignup", "postAttributeCollection")


class GraphApiConnectors:
    def __init__(self, client: GraphServiceClient) -> None:
        self._raw = RawGraph(client)
        self._v1 = self._raw.v1

    async def list_api_connectors(self) -> list[dict[str, Any]]:
        return await self._raw.collection(f"{self._v1}{CONNECTORS}")

    async def create_api_connector(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._raw.send(Method.POST, f"{self._v1}{CONNECTORS}", body)

    async def update_api_connector(self, connector_id: str, body: dict[str, Any]) -> None:
        await self._raw.send(Method.PATCH, f"{self._v1}{CONNECTORS}/{url_quote(connector_id, safe='')}", body)

    async def list_user_flows(self) -> list[dict[str, Any]]:
        """The self-service sign-up user flows (identitycontainer-list-b2xuserflows.md: IdentityUserFlow.Read.All)."""
        return await self._raw.collection(f"{self._v1}{USER_FLOWS}")

    async def user_flow_connectors(self, flow_id: str) -> dict[str, Any] | None:
        """The flow's connector per step, expanded as the get page documents; None when Graph refuses the
        ``$expand`` (the resource page says it is not supported), so the caller knows it cannot tell."""
        url = f"{self._v1}{USER_FLOWS}/{url_quote(flow_id, safe='')}/apiConnectorConfiguration"
        try:
            return await self._raw.send(Method.GET, f"{url}?$expand={','.join(STEPS)}")
        except BadRequestError:
            return None

    async def attach_api_connector(self, flow_id: str, step: str, connector_id: str) -> None:
        url = f"{self._v1}{USER_FLOWS}/{url_quote(flow_id, safe='')}/apiConnectorConfiguration/{step}/$ref"
        reference = f"{self._v1}{CONNECTORS}/{url_quote(connector_id, safe='')}"
        await self._raw.send(Method.PUT, url, {"@odata.id": reference})
