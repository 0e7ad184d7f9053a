"""The composition root paces every Graph call with one budget, and shares that same budget through the lease."""

from __future__ import annotations

import uuid

from app.bootstrap import bootstrap
from config.settings import load_settings
from graph.budget import BudgetClass, GraphBudget, shared_budget
from graph.budget_lease import BudgetLease
from graph.credentials import TenantSimCredential
from graph.permissions import GRANTED


async def test_a_budget_given_to_bootstrap_is_the_one_the_client_spends_and_the_lease_shares(local_stack):
    """With ``graph_budget`` the Graph client books its requests on that budget and the lease sets its shares;
    the process-wide budget is left alone (a compressed benchmark budget must not pace production's)."""
    suffix = uuid.uuid4().hex[:8]
    env = {**local_stack.env, "LIFECYCLE_TABLE_PREFIX": f"bb{suffix}", "LIFECYCLE_QUEUE_PREFIX": f"bb{suffix}-"}
    budget = GraphBudget()
    services = await bootstrap(
        load_settings(env),
        credential=TenantSimCredential(local_stack.tenantsim_url, roles=GRANTED),
        graph_budget=budget,
    )
    try:
        assert isinstance(budget.coordinator, BudgetLease)
        assert shared_budget().coordinator is not budget.coordinator
        await services.directory.get_user("megan.bowen@contoso.com")
        spent = {key[2]: b.spent + b.level for key, b in budget._budgets.items()}
        assert spent.get(BudgetClass.RESOURCE_UNITS, 0) > 0, "the read was not booked on the given budget"
        assert budget.coordinator.knows(next(iter(budget._budgets)))
    finally:
        await services.close()
