"""Azure Functions entry points (Python v2 programming model). Triggers only.

Each function parses its input, hands it to a lifecycle handler and settles. Services are built on the
first invocation, never at import: the worker imports this module while indexing.
"""

from __future__ import annotations

import azure.functions as func
import structlog

from lifecycle.models import ReceivedMessage

app = func.FunctionApp()

SERVICE_BUS_CONNECTION = "ServiceBusConnection"
ONBOARDING_QUEUE = "onboarding"


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


@app.function_name("onboarding_worker")
@app.service_bus_queue_trigger(arg_name="msg", queue_name=ONBOARDING_QUEUE, connection=SERVICE_BUS_CONNECTION)
async def onboarding_worker(msg: func.ServiceBusMessage) -> None:
    from lifecycle.bootstrap import get_services
    from lifecycle.onboarding import handle_ticket
    from lifecycle.processing import settle_in_function

    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(function="onboarding_worker", message_id=msg.message_id)
    services = await get_services()
    message = received_from_service_bus(msg)
    outcome = await handle_ticket(message, services)
    await settle_in_function(services.settings.queue_name(ONBOARDING_QUEUE), message, outcome, services)


@app.function_name("signup_connector")
@app.route(route="signup", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def signup_connector(req: func.HttpRequest) -> func.HttpResponse:
    """Entra's sign-up callout. Anonymous at the Functions layer: the handler validates Entra's bearer token."""
    from lifecycle.signup.composition import signup_services
    from lifecycle.signup.http import handle_signup_request

    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(function="signup_connector")
    status, headers, body = await handle_signup_request(
        req.method, dict(req.headers), req.get_body(), signup_services()
    )
    return func.HttpResponse(body=body, status_code=status, headers=headers)


@app.function_name("hold_release")
@app.timer_trigger(arg_name="timer", schedule="0 */5 * * * *", run_on_startup=False, use_monitor=True)
async def hold_release(timer: func.TimerRequest) -> None:
    """Every five minutes: send held tickets whose notBefore has come back onto the onboarding queue."""
    from lifecycle.bootstrap import get_services
    from lifecycle.holds import release_due

    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(function="hold_release", past_due=timer.past_due)
    await release_due(await get_services())


@app.function_name("policy_drift")
@app.timer_trigger(arg_name="timer", schedule="0 0 * * * *", run_on_startup=False, use_monitor=True)
async def policy_drift(timer: func.TimerRequest) -> None:
    """Hourly: plan the tenant's external-collaboration policies against the desired state (enforce if set)."""
    from lifecycle.bootstrap import get_services
    from lifecycle.drift import entry as drift

    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(function="policy_drift", past_due=timer.past_due)
    await drift.on_timer(await get_services(), timer.past_due)
