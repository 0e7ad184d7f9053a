"""The soak's own building blocks: slow-answer accounting in tenantsim's faults, and an Azurite restart."""

from __future__ import annotations

import pytest
from azure.data.tables import TableServiceClient

from tenantsim.faults import FaultConfig
from tenantsim.stack import LocalStack


def test_slow_rate_delays_that_share_of_requests_and_counts_them():
    """slowRate picks the requests that get the latency; 'slowed' counts exactly those, seedably."""
    config = FaultConfig.from_json({"latencyMs": 200, "slowRate": 0.25, "seed": 3})
    delays = [config.plan("/v1.0/users").delay_seconds for _ in range(2000)]
    slowed = sum(1 for d in delays if d > 0)
    assert 400 < slowed < 600 and config.as_json()["slowed"] == slowed
    assert all(d == 0.2 for d in delays if d > 0)
    again = FaultConfig.from_json({"latencyMs": 200, "slowRate": 0.25, "seed": 3})
    assert [again.plan("/v1.0/users").delay_seconds for _ in range(2000)] == delays


def test_without_slow_rate_every_request_gets_the_latency_as_before():
    """The default keeps the old meaning of latencyMs: every matching request is delayed and counted."""
    config = FaultConfig.from_json({"latencyMs": 50})
    assert all(config.plan("/v1.0/users").delay_seconds == 0.05 for _ in range(10))
    assert config.slowed == 10


@pytest.mark.parametrize("bad", [-0.1, 1.5, True, "half"])
def test_a_slow_rate_that_is_not_a_probability_is_refused(bad):
    with pytest.raises(Exception, match="slowRate"):
        FaultConfig.from_json({"slowRate": bad})


@pytest.mark.stack
def test_azurite_restarts_on_the_same_ports_with_its_data():
    """After restart_azurite the same connection string reaches the same tables and rows."""
    with LocalStack(tenantsim=False) as stack:
        service = TableServiceClient.from_connection_string(stack.tables_connection_string)
        table = service.create_table_if_not_exists("soakrestart")
        table.create_entity({"PartitionKey": "p", "RowKey": "r", "value": 42})
        ports = dict(stack.azurite.ports)
        stack.restart_azurite()
        assert stack.azurite.ports == ports
        assert table.get_entity("p", "r")["value"] == 42
