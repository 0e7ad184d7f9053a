"""The tenant the policy tests share: a tenantsim server of its own per module (a few guests), reset to the
documented readings before each test; a module that needs another tenant defines its own ``sim``/``admin``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tenantsim.client import TenantSimAdmin
from tenantsim.server import TenantSimServer


@pytest.fixture(scope="module")
def sim() -> Iterator[TenantSimServer]:
    with TenantSimServer(guests=5) as server:
        yield server


@pytest.fixture
def admin(sim: TenantSimServer) -> Iterator[TenantSimAdmin]:
    with TenantSimAdmin(sim.url) as client:
        # The documented readings are the defaults; a test that takes the other reading opts in itself.
        client.configure(
            throttlingEnabled=False,
            federationDomainsInline=True,
            tenantLookupDomains="primary",
            partnerNullSetting="inherit",
        )
        client.clear_faults()
        yield client
