"""The doctor's checks of Table Storage and the queues the jobs consume. Reads only."""

from __future__ import annotations

from collections.abc import Mapping

from lifecycle.doctor.checks import Check, Status
from lifecycle.doctor.ports import DoctorProbe, StorageProblem
from lifecycle.jobs import JOBS as REGISTRY

# Which job reads which queue (the registry's queue triggers; guest-actions is the sweep's fan-out).
QUEUE_JOBS = {job.queue: (job.name if job.name != "guest-actions" else "guest-sweep",) for job in REGISTRY if job.queue}

# --- storage ---------------------------------------------------------------------------------------


async def storage_checks(probe: DoctorProbe, queues: Mapping[str, str]) -> list[Check]:
    checks: list[Check] = []
    try:
        tables = await probe.tables()
    except StorageProblem as exc:
        checks.append(
            Check(
                "table storage",
                Status.FAIL,
                f"unreachable: {exc}",
                fix="check LIFECYCLE_TABLES_ENDPOINT and the identity's Storage Table Data Contributor role",
            )
        )
    else:
        absent = [name for name, exists in tables if not exists]
        if absent:
            checks.append(
                Check(
                    "table storage",
                    Status.WARN,
                    f"reachable; tables not created yet: {', '.join(absent)}",
                    fix="the app creates them when it first starts; nothing to do before a first run",
                )
            )
        else:
            checks.append(Check("table storage", Status.PASS, f"reachable; {len(tables)} tables present"))
    for logical, deployed in queues.items():
        jobs = QUEUE_JOBS.get(logical, ("guest-sweep",))
        name = f"queue {deployed}"
        try:
            exists, dead = await probe.queue(deployed)
        except StorageProblem as exc:
            checks.append(
                Check(
                    name,
                    Status.FAIL,
                    f"unreachable: {exc}",
                    jobs,
                    "check the queue settings and the identity's Service Bus Data Sender/Receiver roles",
                )
            )
            continue
        if not exists:
            checks.append(
                Check(
                    name,
                    Status.FAIL,
                    "does not exist",
                    jobs,
                    "deploy infra/main.bicep (it creates the queues), or check LIFECYCLE_QUEUE_PREFIX",
                )
            )
        elif dead:
            checks.append(
                Check(
                    name,
                    Status.WARN,
                    f"{dead} dead letter(s)",
                    jobs,
                    "python -m lifecycle failed, then replay or purge",
                )
            )
        else:
            checks.append(Check(name, Status.PASS, "reachable, no dead letters", jobs))
    return checks
