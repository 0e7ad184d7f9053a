"""The composition root: builds the real clients once per process and hands them to the core.

Nothing is built at import time (the Functions worker imports function_app while indexing); the first
invocation builds the services and later ones reuse them. Tests call ``bootstrap`` with overrides.

``compose_services`` is the one place a bundle is assembled from named ports: the kernel's ports, and
each job's ports dataclass (lifecycle.services explains why they live in ``Services.jobs``). ``bootstrap``
hands it the real adapters; tests (tests.builders.memory_services) hand it fakes through the same door.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import structlog

from config.desired_state import DesiredState, load_desired_state
from config.logging import configure_logging
from config.settings import Settings, load_settings
from lifecycle.clock import SystemClock
from lifecycle.drift.ca_policies import ConditionalAccessWrites, SignInEvidence
from lifecycle.drift.identity_providers import GuestIdentityProviderTenant
from lifecycle.drift.native_ports import GuestLifecyclePolicies
from lifecycle.drift.native_priority import LifecyclePolicyPriority
from lifecycle.drift.native_scope import ScopeGroups
from lifecycle.drift.ports import DriftPorts, DriftReports, TenantPolicies
from lifecycle.drift.signup_connector import SignUpConnectors
from lifecycle.governance.ports import GovernanceGraph, GovernancePorts
from lifecycle.ports import (
    AccessPackages,
    AuditLog,
    Clock,
    Directory,
    GuestLedger,
    ProtectedGroupCheck,
    QueueTransport,
    Rejections,
    WorkItems,
)
from lifecycle.reporting.ports import ReportPorts, ReportStore
from lifecycle.reset.ports import ProviderLookup, ResetPorts
from lifecycle.restore.ports import DeletedUsers, RestorePorts
from lifecycle.services import JobPorts, Services
from lifecycle.sweep.ports import AssignmentExpiries, GroupMembership, GuestReads, SweepPorts, SweepRuns

log = structlog.get_logger(__name__)

_cached: dict[int, Services] = {}
_lock = asyncio.Lock()


async def bootstrap(settings: Settings | None = None, **overrides: Any) -> Services:
    """Build Services from settings; any port named in ``overrides`` is used instead of the real one.

    ``graph_budget`` (a graph.budget.GraphBudget) replaces the process-wide budget for the Graph client and
    the shared lease alike: a benchmark against tenantsim's compressed windows paces with compressed quotas,
    and the lease must set the shares of the budget the client spends, not of another one. ``queue_slots``
    (messages one instance works on at once; host.json's maxConcurrentCalls unless given) sizes the longest
    wait for the budget before a call is rescheduled (graph.budget.WaitLimit).
    """
    settings = settings or load_settings()
    graph_budget = overrides.pop("graph_budget", None)
    queue_slots = overrides.pop("queue_slots", None) or host_queue_slots()
    configure_logging(json=settings.log_format == "json", level=settings.log_level)
    desired = overrides.pop("desired", None) or load_desired_state(settings.desired_state_path)
    closers: list[Any] = []
    credential = overrides.pop("credential", None)
    if credential is None and not {"directory", "work_items", "transport"} <= overrides.keys():
        credential = _credential(settings, desired)
        if hasattr(credential, "close"):
            closers.append(credential.close)

    if not {"directory", "access_packages"} <= overrides.keys():
        client = _graph_client(settings, credential, graph_budget, queue_slots)
        overrides.setdefault("directory", _directory(client))
        overrides.setdefault("access_packages", _access_packages(client))
        for name, port in _job_ports(settings, client).items():
            overrides.setdefault(name, port)
    table_ports = ("work_items", "guests", "audit", "rejections", "sweep_runs", "drift_reports")
    # An operator's own sign-in (the read-only runbook commands) finds the app's tables and leaves its shared
    # state alone: no table is created, no Graph budget lease is joined (the operator's Graph calls are not the
    # app's), and audit rows are not streamed with the operator's identity.
    operator = settings.graph_credential == "azure-cli"
    state = None
    if not set(table_ports) <= overrides.keys():
        from adapters.drift_reports import TableDriftReports
        from adapters.sweep_runs import TableSweepRuns
        from adapters.tables import TableState

        # One TableServiceClient for every table the product keeps.
        state = TableState.from_settings(settings, credential=credential)
        if not operator:
            await state.ensure_tables()
        closers.append(state.close)
        for name in ("work_items", "guests", "audit", "rejections"):
            overrides.setdefault(name, getattr(state, name))
        for name, store_type in (("sweep_runs", TableSweepRuns), ("drift_reports", TableDriftReports)):
            table = f"{settings.table_prefix}{store_type.TABLE}"
            if name not in overrides:
                if not operator:
                    await state.service.create_table_if_not_exists(table)
                store = store_type(state.service.get_table_client(table))
                closers.append(store.close)  # closes its table client; the service closes with the state
                overrides[name] = store
        if (
            not operator
            and overrides["audit"] is state.audit
            and (streamed := _audit_stream(state.audit, credential)) is not None
        ):
            overrides["audit"] = streamed
            closers.append(streamed.close)  # runs before the table closers: the stream's client goes first
    ledger = overrides.pop("budget_ledger", None)
    if ledger is None and state is not None and not operator:
        ledger = await _table_budget_ledger(settings, state)
        closers.append(ledger.close)
    if ledger is not None:
        # After the table closers, so it runs first on close: its rows go before the clients do.
        closers.append(_budget_lease(ledger, graph_budget).close)
    if "transport" not in overrides:
        overrides["transport"] = _transport(settings, credential)
        closers.append(overrides["transport"].close)
    if "report_store" not in overrides and (store := _report_store(settings, credential)) is not None:
        overrides["report_store"] = store
        closers.append(store.close)

    return compose_services(
        settings=settings,
        desired=desired,
        clock=overrides.pop("clock", None) or SystemClock(),
        closers=closers,
        **overrides,
    )


class ProtectedGroupReads(GroupMembership, ProtectedGroupCheck, Protocol):
    """The protected group, read two ways: its members (planning) and one object's membership (the gate)."""


def compose_services(
    *,
    settings: Settings,
    desired: DesiredState,
    clock: Clock,
    directory: Directory,
    access_packages: AccessPackages,
    work_items: WorkItems,
    guests: GuestLedger,
    audit: AuditLog,
    rejections: Rejections,
    transport: QueueTransport,
    sweep_runs: SweepRuns | None = None,
    guest_reads: GuestReads | None = None,
    group_membership: ProtectedGroupReads | None = None,
    assignment_expiries: AssignmentExpiries | None = None,
    provider_lookup: ProviderLookup | None = None,
    tenant_policies: TenantPolicies | None = None,
    drift_reports: DriftReports | None = None,
    sign_up_connectors: SignUpConnectors | None = None,
    conditional_access_writes: ConditionalAccessWrites | None = None,
    sign_in_evidence: SignInEvidence | None = None,
    guest_identity_providers: GuestIdentityProviderTenant | None = None,
    lifecycle_policies: GuestLifecyclePolicies | None = None,
    scope_groups: ScopeGroups | None = None,
    lifecycle_priority: LifecyclePolicyPriority | None = None,
    governance_graph: GovernanceGraph | None = None,
    deleted_users: DeletedUsers | None = None,
    report_store: ReportStore | None = None,
    closers: list[Callable[[], Awaitable[None]]] | None = None,
) -> Services:
    """The bundle, with each job's ports built from the named ones.

    ``guest_reads`` defaults to the Directory port, which serves the sweep's reads too. ``group_membership``
    feeds both the safety gate's live check and the sweep's and reset's member listing; without it, a
    configured protected group stops every write to a guest. A job whose required ports are missing (the
    sweep and reset without ``sweep_runs``, drift without both of its ports, governance without its graph)
    gets no ports, and its entry point refuses to run. An undo of a run (restore) needs ``sweep_runs`` and
    ``deleted_users``. ``report_store`` is where the daily report is written.
    """
    jobs: list[object] = []
    if sweep_runs is not None:
        reads = directory if guest_reads is None else guest_reads
        jobs.append(SweepPorts(sweep_runs, reads, group_membership, assignment_expiries))
        jobs.append(ResetPorts(sweep_runs, group_membership, provider_lookup))
        if deleted_users is not None:
            jobs.append(RestorePorts(sweep_runs, reads, deleted_users))
    if tenant_policies is not None and drift_reports is not None:
        jobs.append(
            DriftPorts(
                tenant_policies,
                drift_reports,
                sign_up_connectors,
                conditional_access_writes,
                sign_in_evidence,
                guest_identity_providers,
                directory if guest_reads is None else guest_reads,
                lifecycle_policies,
                scope_groups,
                lifecycle_priority,
            )
        )
    if governance_graph is not None:
        jobs.append(GovernancePorts(governance_graph))
    if report_store is not None:
        jobs.append(ReportPorts(report_store))
    return Services(
        settings=settings,
        desired=desired,
        clock=clock,
        directory=directory,
        access_packages=access_packages,
        work_items=work_items,
        guests=guests,
        audit=audit,
        rejections=rejections,
        transport=transport,
        protected_groups=group_membership,
        jobs=JobPorts(*jobs),
        closers=closers if closers is not None else [],
    )


async def get_services() -> Services:
    """The process-wide Services for the running event loop (async clients are bound to their loop)."""
    loop_id = id(asyncio.get_running_loop())
    if loop_id not in _cached:
        async with _lock:
            if loop_id not in _cached:
                _cached[loop_id] = await bootstrap()
                log.info("bootstrap.ready")
    return _cached[loop_id]


@contextlib.contextmanager
def use_services(services: Services) -> Iterator[Services]:
    """Make ``get_services`` return ``services`` on the running loop (tests: fakes through the same door)."""
    loop_id = id(asyncio.get_running_loop())
    previous = _cached.get(loop_id)
    _cached[loop_id] = services
    try:
        yield services
    finally:
        if previous is None:
            _cached.pop(loop_id, None)
        else:
            _cached[loop_id] = previous


def _credential(settings: Settings, desired: DesiredState | None = None) -> Any:
    if settings.graph_credential == "tenantsim":
        from graph.credentials import TenantSimCredential, simulator_root
        from graph.permissions import features_of, granted

        # The same grant as in Azure: the reset's User.ReadWrite.All only where redemption reset is switched on,
        # an opt-in feature's permissions only where the desired state manages it.
        features = features_of(desired) if desired is not None else frozenset()
        roles = granted(redemption_reset=settings.reset_enabled, features=features)
        return TenantSimCredential(simulator_root(settings.graph_base_url), roles=roles)
    if settings.graph_credential == "azure-cli":
        # An operator's laptop: storage, Service Bus and Graph are read with the operator's own sign-in.
        from azure.identity.aio import AzureCliCredential

        return AzureCliCredential(tenant_id=settings.tenant_id)
    from azure.identity.aio import ManagedIdentityCredential

    return ManagedIdentityCredential(client_id=settings.managed_identity_client_id)


def _graph_client(settings: Settings, credential: Any, budget: Any = None, queue_slots: int | None = None) -> Any:
    from graph.budget import WaitLimit
    from graph.client import DEFAULT_MAX_BUDGET_WAIT, build_graph_client
    from graph.read_only import transport_for

    return build_graph_client(
        credential=credential,
        base_url=settings.graph_base_url,
        scope=settings.graph_scope,
        budget=budget,
        max_budget_wait=WaitLimit(queue_slots) if queue_slots else DEFAULT_MAX_BUDGET_WAIT,
        # The operator's own sign-in only reads: a write is refused before it is sent (graph.read_only).
        transport=transport_for(settings.graph_credential),
    )


HOST_JSON = Path(__file__).resolve().parents[1] / "host.json"  # deployed beside function_app.py


def host_queue_slots(host_json: Path = HOST_JSON) -> int | None:
    """host.json's Service Bus ``maxConcurrentCalls``: the messages one instance works on at once (None when
    the file or the setting is missing, e.g. a command line run outside the app's folder)."""
    try:
        return int(json.loads(host_json.read_text())["extensions"]["serviceBus"]["maxConcurrentCalls"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _directory(client: Any) -> Any:
    from graph.users import GraphDirectory

    return GraphDirectory(client)


def _job_ports(settings: Settings, client: Any) -> dict[str, Any]:
    """The Graph-side ports of the sweep, drift, governance and reset jobs, on the one Graph client."""
    from graph.api_connectors import GraphApiConnectors
    from graph.assignment_expiries import GraphAssignmentExpiries
    from graph.deleted_items import GraphDeletedUsers
    from graph.governance import GraphGovernance
    from graph.groups import GraphGroupMembers
    from graph.identity_providers import GraphGuestIdentityProviders
    from graph.lifecycle_policies import GraphGuestLifecyclePolicies, GraphLifecyclePolicyPriority
    from graph.policies import GraphPolicies
    from graph.scope_groups import GraphScopeGroups
    from graph.sign_ins import GraphSignInEvidence
    from graph.tenants import GraphProviderLookup
    from graph.users import GraphSweepReads

    policies = GraphPolicies(client, beta_url=settings.graph_beta_url)
    return {
        "guest_reads": GraphSweepReads(client),
        "group_membership": GraphGroupMembers(client),
        "assignment_expiries": GraphAssignmentExpiries(client),
        "tenant_policies": policies,
        "sign_up_connectors": GraphApiConnectors(client),
        "conditional_access_writes": policies,  # the same gateway as the reads: one pace for every CA call
        "sign_in_evidence": GraphSignInEvidence(client),
        "guest_identity_providers": GraphGuestIdentityProviders(client, policies),
        # Read (and, for the policies and their order, written) only for a desired state with guestLifecyclePolicies.
        "lifecycle_policies": GraphGuestLifecyclePolicies(client),
        "scope_groups": GraphScopeGroups(client),
        "lifecycle_priority": GraphLifecyclePolicyPriority(client),
        "provider_lookup": GraphProviderLookup(policies),
        "governance_graph": GraphGovernance(client),
        "deleted_users": GraphDeletedUsers(client),
    }


def _access_packages(client: Any) -> Any:
    from graph.entitlement import GraphAccessPackages

    return GraphAccessPackages(client)


async def _table_budget_ledger(settings: Settings, state: Any) -> Any:
    from adapters.budget_ledger import TableBudgetLedger

    table = f"{settings.table_prefix}{TableBudgetLedger.TABLE}"
    await state.service.create_table_if_not_exists(table)
    return TableBudgetLedger(state.service.get_table_client(table))


def _budget_lease(ledger: Any, budget: Any = None) -> Any:
    """The lease through which this process shares Graph's buckets with the app's other instances."""
    from graph.budget import shared_budget
    from graph.budget_lease import BudgetLease

    return BudgetLease(ledger).attach(budget or shared_budget())


def _audit_stream(table: Any, credential: Any, environ: Mapping[str, str] | None = None) -> Any:
    """The audit log that also streams to Log Analytics, when the app settings name an ingestion endpoint."""
    from adapters.audit_stream import AuditStreamTarget, StreamedAuditLog, logs_ingestion_client

    target = AuditStreamTarget.from_environ(environ)
    if target is None:
        return None
    return StreamedAuditLog(table, logs_ingestion_client(target, credential), target)


def _report_store(settings: Settings, credential: Any) -> Any:
    """The daily report's blob container (adapters.report_blobs), or None when the settings name none."""
    from adapters.report_blobs import BlobReportStore

    return BlobReportStore.from_settings(settings, credential)


def _transport(settings: Settings, credential: Any) -> Any:
    if settings.queue_transport == "storage":
        from adapters.storage_queue import StorageQueueTransport

        return StorageQueueTransport.from_settings(settings)
    from adapters.servicebus import ServiceBusTransport

    return ServiceBusTransport.from_settings(settings, credential=credential)
