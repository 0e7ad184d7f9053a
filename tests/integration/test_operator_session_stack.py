"""An operator's read-only session (LIFECYCLE_GRAPH_CREDENTIAL=azure-cli) on the app's storage: it reads what the
app wrote and leaves the app's shared state alone, so a reader's roles are enough for it."""

from __future__ import annotations

import os
import uuid

import pytest
from azure.data.tables.aio import TableServiceClient

from app.bootstrap import bootstrap
from app.cli.common import ExitCode, explain
from config.settings import load_settings
from graph.budget_lease import BudgetLease
from graph.credentials import TenantSimCredential
from graph.permissions import GRANTED
from lifecycle.errors import ReadOnlySessionError
from lifecycle.ledger.status import record_run
from lifecycle.onboarding.submission import submit_documents
from tenantsim.client import TenantSimAdmin
from tests.builders import lifecycle_cli, onboard_ticket

pytestmark = pytest.mark.stack


async def _tables(connection: str, prefix: str) -> set[str]:
    async with TableServiceClient.from_connection_string(connection) as service:
        return {t.name async for t in service.list_tables() if t.name.startswith(prefix)}


async def test_an_operator_session_creates_no_table_and_joins_no_graph_budget(local_stack):
    prefix = "op" + uuid.uuid4().hex[:8]
    env = {**local_stack.env, "LIFECYCLE_TABLE_PREFIX": prefix, "LIFECYCLE_QUEUE_PREFIX": prefix}
    operator = load_settings({**env, "LIFECYCLE_GRAPH_CREDENTIAL": "azure-cli"})
    services = await bootstrap(operator)
    try:
        assert await _tables(local_stack.tables_connection_string, prefix) == set()
        owners = [getattr(close, "__self__", None) for close in services.closers]
        assert not any(isinstance(owner, BudgetLease) for owner in owners)
    finally:
        await services.close()


async def test_status_reads_what_the_app_wrote_with_the_operators_settings(local_stack):
    """The app's session creates its tables and sends a ticket; the operator's status sees the queue."""
    prefix = "op" + uuid.uuid4().hex[:8]
    env = {**local_stack.env, "LIFECYCLE_TABLE_PREFIX": prefix, "LIFECYCLE_QUEUE_PREFIX": prefix}
    app = await bootstrap(load_settings(env), credential=TenantSimCredential(env["TENANTSIM_URL"], roles=GRANTED))
    try:
        await submit_documents(app, "onboarding", [onboard_ticket(ticketId="RITM0099001")])
        await record_run(app, "onboarding", {"processed": 0})
    finally:
        await app.close()
    result = lifecycle_cli({**os.environ, **env, "LIFECYCLE_GRAPH_CREDENTIAL": "azure-cli"}, "status", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"active": 1' in result.stdout


async def test_an_operator_session_reads_graph_and_refuses_any_write_before_it_is_sent(local_stack):
    """The floor under each command's own refusal: the session's Graph client sends GET only."""
    prefix = "op" + uuid.uuid4().hex[:8]
    env = {**local_stack.env, "LIFECYCLE_TABLE_PREFIX": prefix, "LIFECYCLE_QUEUE_PREFIX": prefix}
    with TenantSimAdmin(local_stack.tenantsim_url) as admin:
        guest = next(u for u in admin.snapshot()["users"] if u.get("userType") == "Guest" and u["accountEnabled"])
        # The app's own roles, so that only the session's transport stands between the call and the tenant.
        credential = TenantSimCredential(env["TENANTSIM_URL"], roles=GRANTED)
        services = await bootstrap(
            load_settings({**env, "LIFECYCLE_GRAPH_CREDENTIAL": "azure-cli"}), credential=credential
        )
        try:
            read = await services.directory.get_user(guest["id"])
            assert read is not None and read.id == guest["id"]
            with pytest.raises(ReadOnlySessionError, match="PATCH"):
                await services.directory.set_account_enabled(guest["id"], False)
        finally:
            await services.close()
        after = next(u for u in admin.snapshot()["users"] if u["id"] == guest["id"])
    assert after["accountEnabled"] is True


def test_a_write_refused_by_the_read_only_session_is_a_usage_error_naming_the_remote_way():
    code, message, hint = explain(ReadOnlySessionError("PATCH /v1.0/users/x refused: this session only reads"))
    assert code is ExitCode.USAGE
    assert "PATCH" in message and "--remote" in hint
