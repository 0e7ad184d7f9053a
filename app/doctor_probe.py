"""The doctor's probe on Microsoft Graph and Azure Storage / Service Bus: reads only, nothing created.

Unlike app.bootstrap it never creates a table or a queue: a missing one is a finding, not something to
repair on the way. On a local stack the tenantsim token carries exactly what infra/grant-graph-permissions
would grant for this deployment's modes (graph.permissions.required), as the managed identity's would.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote as url_quote
from urllib.parse import urlencode

from azure.core.exceptions import AzureError, ResourceNotFoundError
from kiota_abstractions.method import Method

from adapters.budget_ledger import TableBudgetLedger
from adapters.drift_reports import TableDriftReports
from adapters.storage_queue import POISON_SUFFIX
from adapters.sweep_runs import TableSweepRuns
from adapters.tables import table_service
from config.desired_state import load_desired_state
from config.errors import DesiredStateError
from config.settings import Settings
from graph.api_connectors import CONNECTORS, USER_FLOWS, GraphApiConnectors
from graph.client import build_graph_client
from graph.governance import GraphGovernance
from graph.groups import GraphGroupMembers
from graph.identity_providers import EMAIL, PROVIDERS, GraphGuestIdentityProviders
from graph.lifecycle_policies import GraphGuestLifecyclePolicies
from graph.odata import quote
from graph.permissions import Deployment, features_of, required
from graph.policies import B2B_POLICIES, CONDITIONAL_ACCESS, FEDERATIONS, XTAP, GraphPolicies
from graph.raw import RawGraph
from graph.read_only import transport_for
from lifecycle.doctor.ports import StorageProblem
from lifecycle.errors import NotFoundError
from lifecycle.governance.ports import CATALOGS, PACKAGES

EM = "/identityGovernance/entitlementManagement"
REVIEWS = "/identityGovernance/accessReviews/definitions"
ROLE_ASSIGNMENTS = "/roleManagement/directory/roleAssignments"
STATE_TABLES = ("workitems", "guests", "audit", "rejections")
MODE_FIELDS = {
    "guest-sweep": "sweep_mode",
    "policy-drift": "drift_mode",
    "governance": "governance_mode",
    "redemption-reset": "reset_mode",
}


def deployment(settings: Settings) -> Deployment:
    """The deployment the settings describe, as infra/grant-graph-permissions reads it from the app settings, with
    the opt-in features its desired-state file manages (none when the file cannot be read: the doctor's own
    desired-state check reports that)."""
    modes = {job: getattr(settings, name) for job, name in MODE_FIELDS.items()}
    try:
        features = features_of(load_desired_state(settings.desired_state_path))
    except DesiredStateError:
        features = frozenset()
    return Deployment(modes, settings.reset_enabled, features)


def required_permissions(settings: Settings) -> dict[str, tuple[str, ...]]:
    return {r.name: r.because for r in required(deployment(settings))}


def doctor_credential(settings: Settings) -> Any:
    if settings.graph_credential == "tenantsim":
        from graph.credentials import TenantSimCredential, simulator_root

        return TenantSimCredential(
            simulator_root(settings.graph_base_url), roles=frozenset(required_permissions(settings))
        )
    if settings.graph_credential == "azure-cli":
        # The operator's sign-in: settings, storage and queues are checked as the operator sees them; the Graph
        # permission checks then describe the operator's token, not the app's (README, "Production runbook").
        from azure.identity.aio import AzureCliCredential

        return AzureCliCredential(tenant_id=settings.tenant_id)
    from azure.identity.aio import ManagedIdentityCredential

    return ManagedIdentityCredential(client_id=settings.managed_identity_client_id)


class GraphStorageProbe:
    def __init__(self, settings: Settings, credential: Any) -> None:
        self._settings = settings
        self._credential = credential
        client = build_graph_client(
            credential=credential,
            base_url=settings.graph_base_url,
            scope=settings.graph_scope,
            transport=transport_for(settings.graph_credential),
        )
        self._raw = RawGraph(client)
        self._v1 = self._raw.v1
        self._beta = settings.graph_beta_url.rstrip("/")
        self._policies = GraphPolicies(client, beta_url=settings.graph_beta_url)
        self._governance = GraphGovernance(client)
        self._groups = GraphGroupMembers(client)
        self._connectors = GraphApiConnectors(client)
        self._closers: list[Any] = []

    async def close(self) -> None:
        for close in reversed(self._closers):
            await close()
        self._closers.clear()

    # --- Graph ----------------------------------------------------------------------------------------

    async def access_token(self) -> str:
        return (await self._credential.get_token(self._settings.graph_scope)).token

    async def read(self, name: str) -> None:
        first_page = {
            "users": f"{self._v1}/users?$select=id&$top=1",
            "signInActivity": f"{self._v1}/users?$select=id,signInActivity&$top=1",
            "authorizationPolicy": f"{self._v1}/policies/authorizationPolicy",
            "b2bManagementPolicy": f"{self._beta}{B2B_POLICIES}",
            "federation": f"{self._v1}{FEDERATIONS}",
            "conditionalAccess": f"{self._v1}{CONDITIONAL_ACCESS}",
            "entitlementManagement": f"{self._v1}{EM}/catalogs?$top=1",
            "accessReviews": f"{self._v1}{REVIEWS}?$top=1",
            # The opt-in areas' reads (lifecycle.doctor.reads.FEATURE_READS).
            "apiConnectors": f"{self._v1}{CONNECTORS}",
            "userFlows": f"{self._v1}{USER_FLOWS}",
            "signInLogs": f"{self._v1}/auditLogs/signIns?$top=1",
            "emailAuthenticationMethod": f"{self._v1}{EMAIL}",
            "identityProviders": f"{self._v1}{PROVIDERS}",
            "lifecyclePolicies": f"{self._v1}/identityGovernance/lifecycleWorkflows/lifecyclePolicies",
        }
        if name in first_page:
            await self._raw.send(Method.GET, first_page[name])
        elif name == "crossTenantAccess":
            await self._raw.send(Method.GET, f"{self._v1}{XTAP}/default")
            await self._raw.send(Method.GET, f"{self._v1}{XTAP}/partners")
        elif name == "tenantInformation":
            await self._policies.find_tenant_by_id(self._settings.tenant_id)
        else:
            raise ValueError(f"unknown doctor read {name!r}")

    async def authorization_policy(self) -> dict[str, Any]:
        return await self._policies.get_authorization_policy()

    async def b2b_management_policies(self) -> list[dict[str, Any]]:
        return await self._policies.list_b2b_management_policies()

    async def role_assignments(self, principal_id: str) -> list[dict[str, Any]]:
        query = urlencode({"$filter": f"principalId eq {quote(principal_id)}"}, quote_via=url_quote)
        return await self._raw.collection(f"{self._v1}{ROLE_ASSIGNMENTS}?{query}")

    async def tenant_by_id(self, tenant_id: str) -> dict[str, Any] | None:
        return await self._policies.find_tenant_by_id(tenant_id)

    async def tenant_by_domain(self, domain: str) -> dict[str, Any] | None:
        return await self._policies.find_tenant_by_domain(domain)

    async def group_exists(self, group_id: str) -> bool:
        try:
            await self._groups.group_member_ids(group_id)
        except NotFoundError:
            return False
        return True

    async def user_flow_connectors(self, flow_id: str) -> dict[str, Any] | None:
        return await self._connectors.user_flow_connectors(flow_id)

    async def catalogs(self) -> list[dict[str, Any]]:
        return await self._governance.list(CATALOGS)

    async def catalog_packages(self, catalog_id: str) -> list[dict[str, Any]]:
        return await self._governance.list(PACKAGES, catalog_id)

    # --- storage --------------------------------------------------------------------------------------

    async def tables(self) -> list[tuple[str, bool]]:
        prefix = self._settings.table_prefix
        names = [f"{prefix}{n}" for n in STATE_TABLES] + [
            f"{prefix}{store.TABLE}" for store in (TableSweepRuns, TableDriftReports, TableBudgetLedger)
        ]
        service, owned = table_service(self._settings, None if self._local else self._credential)
        found = []
        try:
            for name in names:
                table = service.get_table_client(name)
                try:
                    pages = table.query_entities("PartitionKey eq ''", results_per_page=1).by_page()
                    async for _ in pages:
                        break
                    found.append((name, True))
                except ResourceNotFoundError:
                    found.append((name, False))
                finally:
                    await table.close()
        except AzureError as exc:
            raise StorageProblem(f"{type(exc).__name__}: {_first_line(exc)}") from exc
        finally:
            await service.close()
            if owned is not None:
                await owned.close()
        return found

    async def queue(self, name: str) -> tuple[bool, int]:
        try:
            if self._settings.queue_transport == "storage":
                return await self._storage_queue(name)
            return await self._servicebus_queue(name)
        except AzureError as exc:
            raise StorageProblem(f"{type(exc).__name__}: {_first_line(exc)}") from exc

    @property
    def _local(self) -> bool:
        return self._settings.graph_credential == "tenantsim"

    async def _storage_queue(self, name: str) -> tuple[bool, int]:
        from azure.storage.queue.aio import QueueServiceClient

        from adapters.sdk_options import sdk_client_options

        secret = self._settings.queues_connection_string
        if secret is None:
            raise StorageProblem("LIFECYCLE_QUEUES_CONNECTION_STRING is not set")
        connection = secret.get_secret_value()
        async with QueueServiceClient.from_connection_string(connection, **sdk_client_options()) as service:
            try:
                await service.get_queue_client(name).get_queue_properties()
            except ResourceNotFoundError:
                return False, 0
            try:
                poison = await service.get_queue_client(f"{name}{POISON_SUFFIX}").get_queue_properties()
            except ResourceNotFoundError:
                return True, 0
            return True, int(poison.approximate_message_count or 0)

    async def _servicebus_queue(self, name: str) -> tuple[bool, int]:
        """Peeks (the Data Receiver role suffices; counting through the administration client needs Manage)."""
        from azure.servicebus import ServiceBusSubQueue
        from azure.servicebus.aio import ServiceBusClient
        from azure.servicebus.exceptions import MessagingEntityNotFoundError

        settings = self._settings
        if settings.servicebus_connection_string is not None:
            client = ServiceBusClient.from_connection_string(settings.servicebus_connection_string.get_secret_value())
        else:
            client = ServiceBusClient(str(settings.servicebus_namespace), self._credential)
        async with client:
            try:
                async with client.get_queue_receiver(name) as receiver:
                    await receiver.peek_messages(max_message_count=1)
            except MessagingEntityNotFoundError:
                return False, 0
            async with client.get_queue_receiver(name, sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dead:
                peeked = await dead.peek_messages(max_message_count=100, sequence_number=1)
            return True, len(peeked)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0]


def graph_ports(settings: Settings, credential: Any) -> tuple[GraphPolicies, GraphGovernance]:
    """The drift and governance ports on Graph, for reading the tenant's posture (export)."""
    client = build_graph_client(credential=credential, base_url=settings.graph_base_url, scope=settings.graph_scope)
    return GraphPolicies(client, beta_url=settings.graph_beta_url), GraphGovernance(client)


class GraphLockdownReads:
    """The export's reads of the lockdown areas (lifecycle.export.lockdown.LockdownReads): the sign-up connector's
    gateway and the guest identity providers' gateway, reads only."""

    def __init__(self, client: Any, policies: GraphPolicies) -> None:
        self._connectors = GraphApiConnectors(client)
        self._providers = GraphGuestIdentityProviders(client, policies)

    async def list_api_connectors(self) -> list[dict[str, Any]]:
        return await self._connectors.list_api_connectors()

    async def list_user_flows(self) -> list[dict[str, Any]]:
        return await self._connectors.list_user_flows()

    async def user_flow_connectors(self, flow_id: str) -> dict[str, Any] | None:
        return await self._connectors.user_flow_connectors(flow_id)

    async def get_email_otp(self) -> dict[str, Any]:
        return await self._providers.get_email_otp()

    async def list_identity_providers(self) -> list[dict[str, Any]]:
        return await self._providers.list_identity_providers()


def export_ports(
    settings: Settings, credential: Any
) -> tuple[GraphPolicies, GraphGovernance, GraphLockdownReads, GraphGuestLifecyclePolicies]:
    """Every port the export reads through, on one Graph client. The guest lifecycle policies are always asked for:
    a token without LifecyclePolicies-Guests.Read.All gets the section left out with why, as a comment."""
    client = build_graph_client(credential=credential, base_url=settings.graph_base_url, scope=settings.graph_scope)
    policies = GraphPolicies(client, beta_url=settings.graph_beta_url)
    return policies, GraphGovernance(client), GraphLockdownReads(client, policies), GraphGuestLifecyclePolicies(client)


async def export_from_settings() -> str:
    from config.settings import load_settings
    from lifecycle.export.run import export_desired_state

    settings = load_settings()
    credential = doctor_credential(settings)
    try:
        policies, governance, lockdown, lifecycle_policies = export_ports(settings, credential)
        return await export_desired_state(settings.tenant_id, policies, governance, lockdown, lifecycle_policies)
    finally:
        if hasattr(credential, "close"):
            await credential.close()
