"""Builders shared by unit tests: services on in-memory fakes, tickets, a fixed clock."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from adapters.memory import (
    MemoryAuditLog,
    MemoryGuestLedger,
    MemoryQueueTransport,
    MemoryRejections,
    MemoryWorkItems,
)
from app.bootstrap import compose_services
from config.desired_state import load_desired_state
from config.settings import ROOT, SAMPLE_DESIRED_STATE, load_settings
from lifecycle.clock import FixedClock
from lifecycle.models import ReceivedMessage
from lifecycle.ports import Directory
from lifecycle.services import Services
from tests.fakes import FakeAccessPackages, FakeDirectory

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
LOCAL_ENV = {
    "LIFECYCLE_ENVIRONMENT": "local",
    "LIFECYCLE_TENANT_ID": "3f2d6a1e-8c4b-4e7a-9b1d-2c5e7f9a0b13",
    "LIFECYCLE_GRAPH_CREDENTIAL": "tenantsim",
    "LIFECYCLE_TABLES_CONNECTION_STRING": "UseDevelopmentStorage=true",
    "LIFECYCLE_QUEUE_TRANSPORT": "storage",
    "LIFECYCLE_QUEUES_CONNECTION_STRING": "UseDevelopmentStorage=true",
}


def memory_services(directory: Directory | None = None, clock: FixedClock | None = None, **overrides: Any) -> Services:
    """Services on in-memory fakes, through the composition root's own door (app.bootstrap.compose_services).

    ``overrides`` names any port compose_services takes: a kernel port, or a job's (``sweep_runs``,
    ``provider_lookup``, ``tenant_policies`` and ``drift_reports``, ``governance_graph``, ...). A job whose ports
    are not given has none, as in a deployment that did not build them. A FakeDirectory also serves as the
    protected group's reads unless ``group_membership`` is given.
    """
    clock = clock or FixedClock(NOW)
    directory = directory or FakeDirectory()
    if "group_membership" not in overrides and isinstance(directory, FakeDirectory):
        overrides["group_membership"] = directory
    parts: dict[str, Any] = {
        "clock": clock,
        "directory": directory,
        "work_items": MemoryWorkItems(),
        "guests": MemoryGuestLedger(),
        "audit": MemoryAuditLog(),
        "rejections": MemoryRejections(),
        "transport": MemoryQueueTransport(clock),
    }
    parts.update(overrides)
    if "settings" not in parts:
        parts["settings"] = load_settings(LOCAL_ENV)
    if "desired" not in parts:
        parts["desired"] = load_desired_state(SAMPLE_DESIRED_STATE)
    if "access_packages" not in parts:
        parts["access_packages"] = _packages()
    return compose_services(**parts)


def _packages() -> FakeAccessPackages:
    """Every partner package of the sample desired state exists, as tenantsim seeds them."""
    packages = FakeAccessPackages()
    for partner in load_desired_state(SAMPLE_DESIRED_STATE).partners.values():
        if partner.access_package:
            packages.add_package(partner.access_package.catalog, partner.access_package.name)
    return packages


def onboard_ticket(**fields: Any) -> dict[str, Any]:
    ticket = {
        "schemaVersion": 1,
        "kind": "onboard",
        "ticketId": "RITM0010001",
        "email": "ana.lopez@fabrikam.com",
        "displayName": "Ana Lopez",
        "partner": "fabrikam",
        "sponsor": "megan.bowen@contoso.com",
        "endDate": "2027-03-31",
        "redirectUrl": "https://partners.contoso.com/fabrikam",
        "sendInvitation": True,
    }
    ticket.update(fields)
    return {k: v for k, v in ticket.items() if v is not None}


def message(body: dict[str, Any] | bytes, message_id: str = "m-1", delivery_count: int = 1) -> ReceivedMessage:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ReceivedMessage(body=raw, message_id=message_id, key=None, kind="ticket", delivery_count=delivery_count)


def lifecycle_cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m lifecycle ARGS`` as an operator runs it, from the checkout, with exactly ``env``."""
    command = [sys.executable, "-m", "lifecycle", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def load_script(path: Path, name: str) -> ModuleType:
    """An extensionless script (infra's grant and registration scripts) imported as module ``name``."""
    loader = importlib.machinery.SourceFileLoader(name, str(path))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = module
    loader.exec_module(module)
    return module
