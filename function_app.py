"""Azure Functions entry points (Python v2 programming model). Triggers only.

Each function parses its input, hands it to a lifecycle handler and settles. Services are built on the
first invocation, never at import: the worker imports this module while indexing.
"""

from __future__ import annotations

import json
import os

import azure.functions as func
import structlog

from lifecycle.jobs import BY_NAME as JOBS
from lifecycle.models import ReceivedMessage

app = func.FunctionApp()
# Two sets of functions from one package: the jobs (Graph, Table Storage and Service Bus, with the app's
# Graph permissions) and the internet-facing sign-up connector, which makes no Graph call. A deployment runs
# them as two function apps with two identities (infra/main.bicep sets LIFECYCLE_FUNCTIONS on each), so the
# endpoint anyone can reach holds no Graph permission and no data role. Local runs and tests index both.
jobs = func.Blueprint()
signup = func.Blueprint()
FUNCTION_SETS = {"all": (jobs, signup), "jobs": (jobs,), "signup": (signup,)}

SERVICE_BUS_CONNECTION = "ServiceBusConnection"
ONBOARDING = JOBS["onboarding"]
GUEST_ACTIONS = JOBS["guest-actions"]


def received_from_service_bus(msg: func.ServiceBusMessage) -> ReceivedMessage:
    properties = {str(k): str(v) for k, v in (getattr(msg, "application_properties", None) or {}).items()}
    return ReceivedMessage(
        body=msg.get_body(),
        message_id=msg.message_id or "",
        key=properties.get("key"),
        kind=properties.get("kind"),
        delivery_count=msg.delivery_count or 1,
        enqueued=msg.enqueued_time_utc,
        properties=properties,
    )


@jobs.function_name("onboarding_worker")
@jobs.service_bus_queue_trigger(
    arg_name="msg", queue_name=ONBOARDING.binding_queue(), connection=SERVICE_BUS_CONNECTION
)
async def onboarding_worker(msg: func.ServiceBusMessage) -> None:
    from app.bootstrap import get_services
    from lifecycle.ledger.settle import settle_in_function
    from lifecycle.onboarding.handler import handle_ticket

    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(function="onboarding_worker", message_id=msg.message_id)
    services = await get_services()
    message = received_from_service_bus(msg)
    outcome = await handle_ticket(message, services)
    await settle_in_function(services.settings.queue_name("onboarding"), message, outcome, services)


@signup.function_name("signup_connector")
@signup.route(route="signup", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def signup_connector(req: func.HttpRequest) -> func.HttpResponse:
    """Entra's sign-up callout. Anonymous at the Functions layer: the handler validates Entra's bearer token."""
    from app.signup import signup_services
    from lifecycle.signup.http import handle_signup_request

    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(function="signup_connector")
    status, headers, body = await handle_signup_request(
        req.method, dict(req.headers), req.get_body(), signup_services()
    )
    return func.HttpResponse(body=body, status_code=status, headers=headers)


@jobs.function_name("admin_endpoint")
@jobs.route(route="admin/{step}", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def admin_endpoint(req: func.HttpRequest) -> func.HttpResponse:
    """The on-call engineer's tenant-changing commands, run with this app's identity. Anonymous at the Functions
    layer: the handler validates the operator's Entra access token and app role (lifecycle/admin/http.py)."""
    from app.admin import admin_endpoint as endpoint
    from lifecycle.admin.http import handle_admin_request
    from lifecycle.errors import SettingsError

    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(function="admin_endpoint")
    try:
        admin = endpoint()
    except SettingsError as exc:
        structlog.get_logger(__name__).error("admin.not-configured", error=str(exc))
        body = json.dumps({"error": {"code": "not-configured", "message": "the admin endpoint is not configured"}})
        return func.HttpResponse(body=body, status_code=503, mimetype="application/json")
    status, headers, body = await handle_admin_request(
        req.method, req.route_params.get("step", ""), dict(req.headers), req.get_body(), admin.bearer, admin.ports
    )
    return func.HttpResponse(body=body, status_code=status, headers=headers)


@jobs.function_name("hold_release")
@jobs.timer_trigger(
    arg_name="timer", schedule=JOBS["hold-release"].binding_schedule(), run_on_startup=False, use_monitor=True
)
async def hold_release(timer: func.TimerRequest) -> None:
    """Every five minutes: send held tickets whose notBefore has come back onto the onboarding queue."""
    from app.bootstrap import get_services
    from lifecycle.onboarding.holds import release_due

    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(function="hold_release", past_due=timer.past_due)
    await release_due(await get_services())


@jobs.function_name("policy_drift")
@jobs.timer_trigger(
    arg_name="timer", schedule=JOBS["policy-drift"].binding_schedule(), run_on_startup=False, use_monitor=True
)
async def policy_drift(timer: func.TimerRequest) -> None:
    """Hourly: plan the tenant's external-collaboration policies against the desired state (enforce if set)."""
    from app.bootstrap import get_services
    from lifecycle.drift import entry as drift

    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(function="policy_drift", past_due=timer.past_due)
    await drift.on_timer(await get_services(), timer.past_due)


@jobs.function_name("guest_sweep")
@jobs.timer_trigger(
    arg_name="timer", schedule=JOBS["guest-sweep"].binding_schedule(), run_on_startup=False, use_monitor=True
)
async def guest_sweep(timer: func.TimerRequest) -> None:
    """Nightly: plan tonight's sweep (run id per occurrence, so a double fire reuses it); fan out if enforcing."""
    from app.bootstrap import get_services
    from lifecycle.sweep.entry import on_timer

    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(function="guest_sweep", past_due=timer.past_due)
    await on_timer(await get_services(), past_due=timer.past_due)


@jobs.function_name("guest_actions_worker")
@jobs.service_bus_queue_trigger(
    arg_name="msg", queue_name=GUEST_ACTIONS.binding_queue(), connection=SERVICE_BUS_CONNECTION
)
async def guest_actions_worker(msg: func.ServiceBusMessage) -> None:
    """One sweep action (disable or delete one guest) or one guest of a redemption-reset run (message kind
    ``redemption-reset``), re-checked right before it is applied."""
    from app.bootstrap import get_services
    from lifecycle.ledger.settle import settle_in_function
    from lifecycle.sweep.entry import handle_guest_action

    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(function="guest_actions_worker", message_id=msg.message_id)
    services = await get_services()
    message = received_from_service_bus(msg)
    outcome = await handle_guest_action(message, services)
    await settle_in_function(services.settings.queue_name("guest-actions"), message, outcome, services)


@jobs.function_name("governance")
@jobs.timer_trigger(
    arg_name="timer", schedule=JOBS["governance"].binding_schedule(), run_on_startup=False, use_monitor=True
)
async def governance(timer: func.TimerRequest) -> None:
    """Daily: ensure access reviews and entitlement management match the desired state (enforce if set)."""
    from app.bootstrap import get_services
    from lifecycle.governance import entry

    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(function="governance", past_due=timer.past_due)
    await entry.on_timer(await get_services(), timer.past_due)


@jobs.function_name("redemption_reset")
@jobs.timer_trigger(
    arg_name="timer", schedule=JOBS["redemption-reset"].binding_schedule(), run_on_startup=False, use_monitor=True
)
async def redemption_reset(timer: func.TimerRequest) -> None:
    """Daily: find guests whose partner changed identity provider and reset their redemption (if enforcing)."""
    from app.bootstrap import get_services
    from lifecycle.reset import entry

    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(function="redemption_reset", past_due=timer.past_due)
    await entry.on_timer(await get_services(), timer.past_due)


@jobs.function_name("guest_report")
@jobs.timer_trigger(
    arg_name="timer", schedule=JOBS["guest-report"].binding_schedule(), run_on_startup=False, use_monitor=True
)
async def guest_report(timer: func.TimerRequest) -> None:
    """Daily: the guest-posture report to the reports blob container (latest.html and a dated copy)."""
    from app.bootstrap import get_services
    from lifecycle.reporting import entry

    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(function="guest_report", past_due=timer.past_due)
    await entry.on_timer(await get_services(), timer.past_due)


def _function_set() -> str:
    chosen = os.environ.get("LIFECYCLE_FUNCTIONS", "all").strip() or "all"
    if chosen not in FUNCTION_SETS:
        raise ValueError(f"LIFECYCLE_FUNCTIONS must be one of {', '.join(FUNCTION_SETS)}, not {chosen!r}")
    return chosen


for _blueprint in FUNCTION_SETS[_function_set()]:
    app.register_functions(_blueprint)
