"""The doctor's checks of the opt-in lockdown areas a desired state declares: the user flows the sign-up
connector is attached to, and the deployment secrets policy drift sends to Graph. Reads only; the areas' Graph
reads themselves are lifecycle.doctor.reads.FEATURE_READS."""

from __future__ import annotations

from collections.abc import Mapping

from config.desired_state import DesiredState
from lifecycle.doctor.checks import Check, Status
from lifecycle.doctor.ports import DoctorProbe
from lifecycle.errors import GraphError, NotFoundError, PermissionDeniedError

JOBS = ("policy-drift",)
SIGNUP_SECRET = "LIFECYCLE_SIGNUP_CONNECTOR_PASSWORD"
GOOGLE_SECRET = "LIFECYCLE_GOOGLE_CLIENT_SECRET"
GRANT = "infra/grant-graph-permissions"


async def user_flow_checks(probe: DoctorProbe, desired: DesiredState) -> list[Check]:
    """Each user flow signUpRegistration names: it exists, and which connector each step calls."""
    registration = desired.sign_up_registration
    return [await _user_flow(probe, flow_id) for flow_id in (registration.user_flows if registration else ())]


def secret_checks(desired: DesiredState, secrets: Mapping[str, bool]) -> list[Check]:
    """A secret Graph never shows back can only be checked for being configured: policy drift refuses to write
    the connector or the Google federation without it."""
    wanted = []
    if desired.sign_up_registration is not None:
        wanted.append((SIGNUP_SECRET, "signUpRegistration: the sign-up connector's Basic password"))
    providers = desired.guest_identity_providers
    if providers is not None and providers.google:
        wanted.append((GOOGLE_SECRET, "guestIdentityProviders.google: Google's client secret"))
    checks = []
    for setting, what in wanted:
        name = f"secret {setting}"
        if secrets.get(setting):
            checks.append(Check(name, Status.PASS, f"{what} is configured (its value is not shown)", JOBS))
        else:
            checks.append(
                Check(
                    name,
                    Status.FAIL,
                    f"{what} is not configured: policy drift refuses to write without it",
                    JOBS,
                    f"set {setting} as a Key Vault reference in the app settings",
                )
            )
    return checks


async def _user_flow(probe: DoctorProbe, flow_id: str) -> Check:
    name = f"user flow {flow_id}"
    try:
        steps = await probe.user_flow_connectors(flow_id)
    except NotFoundError:
        return Check(
            name,
            Status.FAIL,
            "signUpRegistration.userFlows names a user flow the tenant does not have",
            JOBS,
            "create the self-service sign-up user flow in the Entra admin center (the product only attaches the "
            "connector to it), or correct its id (B2X_1_...)",
        )
    except PermissionDeniedError as exc:
        return Check(
            name,
            Status.FAIL,
            f"its API connector configuration: refused ({exc.status} {exc.code})",
            JOBS,
            f"grant IdentityUserFlow.ReadWrite.All ({GRANT} --feature signup-registration)",
        )
    except GraphError as exc:
        return Check(name, Status.CANNOT_VERIFY, f"its API connector configuration: {exc}", JOBS, "retry")
    if steps is None:
        return Check(
            name,
            Status.CANNOT_VERIFY,
            "exists, but Graph would not expand which connector each step calls",
            JOBS,
            "nothing to grant: policy drift then sets each step again on every enforce run (idempotent)",
        )
    attached = {step: (c or {}).get("displayName") for step, c in steps.items() if isinstance(c, dict)}
    shown = ", ".join(f"{step} calls {connector!r}" for step, connector in attached.items()) or "no step calls one"
    return Check(name, Status.PASS, f"exists; {shown}", JOBS)
