"""One doctor run: settings and the desired state first, then everything the probe can read."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from config.desired_state import load_desired_state
from config.settings import Settings, load_settings
from lifecycle.doctor.checks import Check, Status
from lifecycle.doctor.diagnose import Target, diagnose
from lifecycle.doctor.ports import DoctorProbe
from lifecycle.errors import DesiredStateError, SettingsError
from lifecycle.ledger.operations import QUEUES

ProbeFactory = Callable[[Settings], tuple[DoctorProbe, Callable[[], Any]]]


def queues_of(settings: Settings, sponsor_queue: str | None) -> dict[str, str]:
    logical = [*QUEUES, *([sponsor_queue] if sponsor_queue else [])]
    return {name: settings.queue_name(name) for name in logical}


async def run_doctor(
    probe_for: ProbeFactory,
    required_for: Callable[[Settings], Mapping[str, Sequence[str]]],
    environ: Mapping[str, str] | None = None,
) -> list[Check]:
    """Every check, in order. Settings or desired-state failures stop the run: nothing else can be checked."""
    try:
        settings = load_settings(environ)
    except SettingsError as exc:
        return [Check("settings", Status.FAIL, str(exc).replace("\n", " "), fix="set the app settings named above")]
    checks = [Check("settings", Status.PASS, f"loaded ({settings.environment}, tenant {settings.tenant_id})")]
    try:
        desired = load_desired_state(settings.desired_state_path)
    except DesiredStateError as exc:
        checks.append(
            Check("desired state", Status.FAIL, str(exc).replace("\n", " "), fix="fix LIFECYCLE_DESIRED_STATE's file")
        )
        return checks
    partners = len(desired.partners)
    checks.append(Check("desired state", Status.PASS, f"{settings.desired_state_path.name}: {partners} partner(s)"))
    notice = desired.lifecycle.sponsor_notice
    secrets = {
        setting: bool(value is not None and value.get_secret_value())
        for setting, value in (
            ("LIFECYCLE_SIGNUP_CONNECTOR_PASSWORD", settings.signup_connector_password),
            ("LIFECYCLE_GOOGLE_CLIENT_SECRET", settings.google_client_secret),
        )
    }
    queues = queues_of(settings, notice.queue if notice.enabled else None)
    target = Target(desired, required_for(settings), queues, secrets)
    probe, close = probe_for(settings)
    try:
        checks.extend(await diagnose(probe, target))
    finally:
        await close()
    return checks
