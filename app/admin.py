"""The admin endpoint's composition: the commands it runs and the token validation it trusts.

Each command is the local command line's own code, unchanged: the same list of changes by name
(app.cli.config.policy_changes, app.cli.jobs.braked_changes, app.cli.ops.selected_dead_letters), and the same
run, approval, replay or purge afterwards, on the jobs app's services (its managed identity). The endpoint adds
the digest check and the audit rows (lifecycle.admin.http).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx

from adapters.signing_keys import JwksSigningKeys
from config.admin import AdminSettings, load_admin_settings
from lifecycle.admin.ports import AdminCommand, AdminInputError, AdminPorts, AdminRefused, Carried, Rows
from lifecycle.clock import SystemClock
from lifecycle.ledger.operations import QUEUES
from lifecycle.ports import Clock
from lifecycle.services import Services
from lifecycle.signup.auth import BearerValidator

_RUN_ID = re.compile(r"^(sweep|reset)-[A-Za-z0-9T:._-]{1,80}$")
_TEXT = re.compile(r"^[^\x00-\x1f\x7f]{1,200}$")


def _object(args: object) -> dict[str, Any]:
    if not isinstance(args, dict):
        raise AdminInputError("invalid-args", "args is a JSON object")
    return args


def _flag(args: dict[str, Any], name: str) -> bool:
    value = args.get(name, False)
    if not isinstance(value, bool):
        raise AdminInputError("invalid-args", f"args.{name} is true or false")
    return value


def _texts(args: dict[str, Any], name: str) -> list[str]:
    value = args.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and _TEXT.match(v) for v in value):
        raise AdminInputError("invalid-args", f"args.{name} is a list of short strings")
    return sorted(set(value))


def _text(args: dict[str, Any], name: str) -> str | None:
    value = args.get(name)
    if value is not None and not (isinstance(value, str) and _TEXT.match(value)):
        raise AdminInputError("invalid-args", f"args.{name} is a short string")
    return value


def _known(args: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise AdminInputError("invalid-args", f"unknown argument(s): {', '.join(unknown)}")


@dataclass(frozen=True)
class ApplyPolicies:
    name: str = "apply-policies"
    columns: tuple[str, ...] = ()
    read_only: bool = False

    def parse(self, args: object) -> dict[str, Any]:
        found = _object(args)
        _known(found, {"removeUnknownPartners", "approvals"})
        return {"removeUnknownPartners": _flag(found, "removeUnknownPartners"), "approvals": _texts(found, "approvals")}

    async def changes(self, services: Services, args: dict[str, Any]) -> Rows | None:
        from app.cli.config import policy_changes

        return await policy_changes(services, args["removeUnknownPartners"], frozenset(args["approvals"]))

    async def carry_out(self, services: Services, args: dict[str, Any], rows: Rows | None, actor: str) -> Carried:
        from app.cli.config import recorded_drift_run
        from lifecycle.drift.entry import render

        approvals = frozenset(args["approvals"])
        run = await recorded_drift_run(services, "enforce", args["removeUnknownPartners"], approvals)
        return Carried(run.exit_code, render(run), run.as_dict(), run.run_id)


@dataclass(frozen=True)
class ApplyGovernance:
    name: str = "apply-governance"
    columns: tuple[str, ...] = ()
    read_only: bool = False

    def parse(self, args: object) -> dict[str, Any]:
        found = _object(args)
        _known(found, {"approveRecreate"})
        return {"approveRecreate": _texts(found, "approveRecreate")}

    async def changes(self, services: Services, args: dict[str, Any]) -> Rows | None:
        from app.cli.config import governance_changes

        return await governance_changes(services, frozenset(args["approveRecreate"]))

    async def carry_out(self, services: Services, args: dict[str, Any], rows: Rows | None, actor: str) -> Carried:
        from app.cli.config import recorded_governance_run
        from lifecycle.governance import render

        result = await recorded_governance_run(services, "enforce", frozenset(args["approveRecreate"]))
        return Carried(int(result["exitCode"]), render(result), result)


@dataclass(frozen=True)
class Approve:
    name: str = "approve"
    columns: tuple[str, ...] = ()
    read_only: bool = False

    def parse(self, args: object) -> dict[str, Any]:
        found = _object(args)
        _known(found, {"runId"})
        run_id = found.get("runId")
        if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
            raise AdminInputError("invalid-args", "args.runId names a sweep or reset run (sweep-YYYY-MM-DD, ...)")
        return {"runId": run_id}

    async def changes(self, services: Services, args: dict[str, Any]) -> Rows | None:
        from app.cli.jobs import braked_changes

        run_id = args["runId"]
        return await braked_changes(services, run_id, run_id.startswith("reset-"))

    async def carry_out(self, services: Services, args: dict[str, Any], rows: Rows | None, actor: str) -> Carried:
        from app.cli.summaries import reset_summary, sweep_exit_code, sweep_summary
        from lifecycle.reset import entry as reset
        from lifecycle.reset.runs import ResetRunError
        from lifecycle.sweep import entry as sweep
        from lifecycle.sweep.runner import SweepError

        run_id = args["runId"]
        # Fan out only, for either run: the guest-actions trigger works the queue (the local command drains it
        # itself), so the answer comes well inside the HTTP trigger's 230 seconds whatever the run's size.
        try:
            if run_id.startswith("reset-"):
                summary = await reset.approve_reset_run(services, run_id, actor)
                return Carried(0, reset_summary(summary), summary, run_id)
            summary = await sweep.approve(services, run_id, actor)
        except (SweepError, ResetRunError) as exc:
            raise AdminRefused("run-not-approvable", str(exc)) from None
        return Carried(sweep_exit_code(summary), sweep_summary(summary), summary, run_id)


@dataclass(frozen=True)
class HaltOrResume:
    """``halt RUN_ID --reason TEXT`` or ``resume RUN_ID``: the on-call stop of a dispatched run and its lifting.
    The resume fans out only; the guest-actions trigger works the queue, as after ``approve``."""

    name: str
    columns: tuple[str, ...] = ()
    read_only: bool = False

    def parse(self, args: object) -> dict[str, Any]:
        found = _object(args)
        _known(found, {"runId", "reason"} if self.name == "halt" else {"runId"})
        run_id = found.get("runId")
        if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
            raise AdminInputError("invalid-args", "args.runId names a sweep or reset run (sweep-YYYY-MM-DD, ...)")
        if self.name != "halt":
            return {"runId": run_id}
        reason = _text(found, "reason")
        if not reason or not reason.strip():
            raise AdminInputError("invalid-args", "args.reason says why the run is halted")
        return {"runId": run_id, "reason": reason}

    async def changes(self, services: Services, args: dict[str, Any]) -> Rows | None:
        from app.cli.halt import HALT_CHANGE, RESUME_CHANGE, run_changes

        if self.name == "halt":
            return await run_changes(services, args["runId"], HALT_CHANGE, args["reason"])
        return await run_changes(services, args["runId"], RESUME_CHANGE)

    async def carry_out(self, services: Services, args: dict[str, Any], rows: Rows | None, actor: str) -> Carried:
        from app.cli.halt import exit_code, halt_run, resume_run, summary_text
        from lifecycle.reset.runs import ResetRunError
        from lifecycle.sweep.runner import SweepError

        run_id = args["runId"]
        try:
            if self.name == "halt":
                summary = await halt_run(services, run_id, actor, args["reason"])
            else:
                summary = await resume_run(services, run_id, actor, drain=False)
        except (SweepError, ResetRunError) as exc:
            raise AdminRefused(f"run-not-{'haltable' if self.name == 'halt' else 'resumable'}", str(exc)) from None
        code = exit_code(summary, halted=self.name == "halt")
        return Carried(code, summary_text(summary), summary, run_id)


@dataclass(frozen=True)
class Restore:
    """``restore --run``: the undo of a sweep run, guest by guest, as the local command plans and carries it."""

    name: str = "restore"
    columns: tuple[str, ...] = ()
    read_only: bool = False

    def parse(self, args: object) -> dict[str, Any]:
        found = _object(args)
        _known(found, {"runId", "key", "overBrake"})
        run_id = found.get("runId")
        if not isinstance(run_id, str) or not _RUN_ID.match(run_id) or not run_id.startswith("sweep-"):
            raise AdminInputError("invalid-args", "args.runId names a sweep run (sweep-YYYY-MM-DD, ...)")
        return {"runId": run_id, "key": _text(found, "key"), "overBrake": _flag(found, "overBrake")}

    async def changes(self, services: Services, args: dict[str, Any]) -> Rows | None:
        from app.cli.restore import plan_rows

        return await plan_rows(services, args["runId"], args["key"])

    async def carry_out(self, services: Services, args: dict[str, Any], rows: Rows | None, actor: str) -> Carried:
        from app.cli.restore import restore_exit_code, summary_text
        from lifecycle.restore.entry import RestoreError, apply_restore, plan_restore

        try:
            plan = await plan_restore(services, args["runId"], args["key"])
        except RestoreError as exc:
            raise AdminRefused("run-not-restorable", str(exc)) from None
        summary = await apply_restore(services, plan, actor, over_brake=args["overBrake"])
        return Carried(restore_exit_code(summary), summary_text(summary), summary, args["runId"])


@dataclass(frozen=True)
class DeadLetters:
    """``replay`` or ``purge``: exactly the dead letters listed (by message id) are replayed or purged."""

    name: str
    columns: tuple[str, ...] = ()
    read_only: bool = False

    def parse(self, args: object) -> dict[str, Any]:
        found = _object(args)
        _known(found, {"queue", "keys", "kind", "reason", "all"})
        queue = found.get("queue", "onboarding")
        if queue not in QUEUES:
            raise AdminInputError("invalid-args", f"args.queue is one of {', '.join(QUEUES)}")
        parsed = {
            "queue": queue,
            "keys": _texts(found, "keys"),
            "kind": _text(found, "kind"),
            "reason": _text(found, "reason"),
            "all": _flag(found, "all"),
        }
        if not (parsed["keys"] or parsed["kind"] or parsed["reason"] or parsed["all"]):
            raise AdminInputError("invalid-args", f"name what to {self.name}: keys, kind, reason, or all")
        return parsed

    async def changes(self, services: Services, args: dict[str, Any]) -> Rows | None:
        from app.cli.ops import selected_dead_letters
        from lifecycle.ledger.operations import Selector

        selector = Selector(kind=args["kind"], reason=args["reason"])
        return await selected_dead_letters(services, args["queue"], tuple(args["keys"]), selector)

    async def carry_out(self, services: Services, args: dict[str, Any], rows: Rows | None, actor: str) -> Carried:
        from app.cli.common import ExitCode
        from lifecycle.ledger import operations
        from lifecycle.ledger.operations import Selector

        if not rows:
            return Carried(ExitCode.NOTHING_MATCHED, f"nothing matched: no dead letter on {args['queue']}", [])
        chosen = Selector(message_ids=tuple(r["messageId"] for r in rows))
        if self.name == "purge":
            purged = await operations.purge(services, args["queue"], chosen, operator=actor)
            code = ExitCode.OK if purged else ExitCode.NOTHING_MATCHED
            return Carried(code, f"purged {len(purged)} dead letter(s)", purged)
        results = await operations.replay(services, args["queue"], chosen, dry_run=False, operator=actor)
        lines = [f"{r['key']}: {r['action']} {r.get('messageId', '')}".rstrip() for r in results]
        code = ExitCode.OK if results else ExitCode.NOTHING_MATCHED
        return Carried(code, "\n".join([*lines, f"{len(results)} dead letter(s) handled"]), results)


REMOTE_JOBS = ("guest-sweep", "policy-drift", "governance", "redemption-reset")  # onboarding: its queue trigger


@dataclass(frozen=True)
class RunJob:
    """``run JOB --mode plan|enforce [--run-id]``, as the job's trigger would run it; the list is the request
    itself (the local command asks nothing either), so a digest still binds the apply to what was shown."""

    name: str = "run"
    columns: tuple[str, ...] = ("job", "mode", "runId")
    read_only: bool = False

    def parse(self, args: object) -> dict[str, Any]:
        found = _object(args)
        _known(found, {"job", "mode", "runId"})
        job, mode = found.get("job"), found.get("mode", "plan")
        if job not in REMOTE_JOBS:
            raise AdminInputError(
                "invalid-args",
                f"args.job is one of {', '.join(REMOTE_JOBS)} (the onboarding queue is worked by its own trigger)",
            )
        if mode not in ("plan", "enforce"):
            raise AdminInputError("invalid-args", "args.mode is plan or enforce")
        run_id = found.get("runId")
        if run_id is not None and not (isinstance(run_id, str) and _RUN_ID.match(run_id)):
            raise AdminInputError("invalid-args", "args.runId names a sweep or reset run (sweep-YYYY-MM-DD, ...)")
        return {"job": job, "mode": mode, "runId": run_id}

    async def changes(self, services: Services, args: dict[str, Any]) -> Rows | None:
        return [dict(args)]

    async def carry_out(self, services: Services, args: dict[str, Any], rows: Rows | None, actor: str) -> Carried:
        from app.cli.config import recorded_drift_run, recorded_governance_run
        from app.cli.summaries import reset_summary, sweep_exit_code, sweep_summary
        from lifecycle.ledger.status import record_run

        job, mode, run_id = args["job"], args["mode"], args["runId"]
        if job == "policy-drift":
            from lifecycle.drift.entry import render

            run = await recorded_drift_run(services, mode, False)
            return Carried(run.exit_code, render(run), run.as_dict(), run.run_id)
        if job == "governance":
            from lifecycle.governance import render as governance_text

            result = await recorded_governance_run(services, mode, frozenset())
            return Carried(int(result["exitCode"]), governance_text(result), result)
        if job == "guest-sweep":
            from lifecycle.sweep import entry as sweep

            # Fan out only, as the timer does: the guest-actions trigger works the queue.
            summary = await sweep.run_sweep(services, mode, run_id)
            await record_run(services, job, summary)
            return Carried(sweep_exit_code(summary), sweep_summary(summary), summary, summary.get("runId"))
        from lifecycle.reset import entry as reset

        # Fan out only, as the timer does: the guest-actions trigger resets the guests.
        summary = await reset.run_reset_detection(services, mode, run_id)
        await record_run(services, job, summary)
        code = 2 if summary["status"] in ("braked", "failed") else 0
        return Carried(code, reset_summary(summary), summary, summary.get("runId"))


@dataclass(frozen=True)
class Doctor:
    """The doctor run by the app, with the app's identity: its Graph permission checks describe the app's token."""

    name: str = "doctor"
    columns: tuple[str, ...] = ()
    read_only: bool = True

    def parse(self, args: object) -> dict[str, Any]:
        from lifecycle.doctor.checks import JOBS

        found = _object(args)
        _known(found, {"job"})
        job = found.get("job")
        if job is not None and job not in JOBS:
            raise AdminInputError("invalid-args", f"args.job is one of {', '.join(JOBS)}")
        return {"job": job}

    async def changes(self, services: Services, args: dict[str, Any]) -> Rows | None:
        return None

    async def carry_out(self, services: Services, args: dict[str, Any], rows: Rows | None, actor: str) -> Carried:
        import json

        from app.cli.doctor import probe_for, required_for
        from lifecycle.doctor.checks import exit_code, for_job, render
        from lifecycle.doctor.run import run_doctor

        checks = for_job(await run_doctor(probe_for, required_for), args["job"])
        return Carried(exit_code(checks), render(checks, False), json.loads(render(checks, True)))


def admin_commands() -> dict[str, AdminCommand]:
    """The tenant-changing commands the endpoint runs, by the name the command line sends."""
    from app.cli.config import CHANGE_COLUMNS
    from app.cli.halt import HALT_COLUMNS
    from app.cli.jobs import APPROVE_COLUMNS
    from app.cli.ops import DEAD_LETTER_COLUMNS
    from app.cli.restore import COLUMNS as RESTORE_COLUMNS

    commands: list[AdminCommand] = [
        ApplyPolicies(columns=CHANGE_COLUMNS),
        ApplyGovernance(columns=CHANGE_COLUMNS),
        Approve(columns=APPROVE_COLUMNS),
        HaltOrResume("halt", HALT_COLUMNS),
        HaltOrResume("resume", HALT_COLUMNS),
        DeadLetters("replay", DEAD_LETTER_COLUMNS),
        DeadLetters("purge", DEAD_LETTER_COLUMNS),
        Restore(columns=RESTORE_COLUMNS),
        RunJob(),
        Doctor(),
    ]
    return {c.name: c for c in commands}


def build_bearer(settings: AdminSettings, *, client: httpx.AsyncClient, clock: Clock) -> BearerValidator:
    """The access-token check: the tenant's keys, its v1 and v2 issuers, the product's audiences, any client."""
    keys = JwksSigningKeys(
        settings.metadata_url,
        client=client,
        clock=clock,
        ttl=timedelta(seconds=settings.keys_ttl_seconds),
        refetch_interval=timedelta(seconds=settings.refetch_interval_seconds),
    )
    return BearerValidator(
        keys,
        issuers=settings.issuers,
        audiences=settings.audiences,
        authorized_party=None,
        clock=clock,
        leeway=timedelta(seconds=settings.clock_skew_seconds),
    )


@dataclass
class AdminEndpoint:
    bearer: BearerValidator
    ports: AdminPorts


_endpoint: AdminEndpoint | None = None


def admin_endpoint(environ: Mapping[str, str] | None = None) -> AdminEndpoint:
    """The process-wide endpoint, built on first use: its settings, key cache and the jobs app's services."""
    global _endpoint
    if _endpoint is None:
        from app.bootstrap import get_services

        settings = load_admin_settings(environ)
        bearer = build_bearer(settings, client=httpx.AsyncClient(), clock=SystemClock())
        ports = AdminPorts(admin_commands(), get_services, settings.role, settings.max_body_bytes)
        _endpoint = AdminEndpoint(bearer, ports)
    return _endpoint


def use_admin_endpoint(endpoint: AdminEndpoint | None) -> AdminEndpoint | None:
    """Replace the process-wide endpoint (tests: a local issuer's keys); returns the one it replaced."""
    global _endpoint
    previous, _endpoint = _endpoint, endpoint
    return previous
