"""On-call commands of ``python -m lifecycle``: status, failed, show, replay, purge."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from app.cli import watch
from app.cli.common import (
    ExitCode,
    JsonOption,
    app,
    cell,
    check_queue,
    console,
    esc,
    explain,
    fail,
    operator,
    print_status,
    with_services,
)
from app.cli.decide import ExportOption, YesOption, check_export, decide
from app.cli.remote import RemoteOption, remote_url, require_app_identity, run_remote
from lifecycle.ledger.operations import QUEUES, Selector

QueueOption = Annotated[str, typer.Option("--queue", help=f"Logical queue: {', '.join(QUEUES)}.")]
KeyOption = Annotated[
    list[str] | None,
    typer.Option("--key", help="Only this key, ticket id, email or object id (repeatable)."),
]
KindOption = Annotated[str | None, typer.Option(help="Only this kind (onboard, offboard, ...).")]
ReasonOption = Annotated[str | None, typer.Option(help="Only items whose error/reason contains this text.")]
PartnerOption = Annotated[str | None, typer.Option(help="Only this partner.")]
SinceOption = Annotated[str | None, typer.Option(help="Only since: an ISO time or a duration like 24h, 7d.")]


def _since(value: str | None) -> datetime | None:
    if not value:
        return None
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if value[-1] in units and value[:-1].isdigit():
        return datetime.now(UTC) - timedelta(**{units[value[-1]]: int(value[:-1])})
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is neither an ISO time (2026-11-23T09:00Z) nor a duration (30m, 24h, 7d)",
            param_hint="--since",
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command()
def status(as_json: JsonOption = False) -> None:
    """Health at a glance: queue depths and dead letters, work items by status, each job's last run."""
    from lifecycle.ledger import operations
    from lifecycle.ledger.status import status as ledger_status

    async def go(services) -> dict[str, Any]:
        from lifecycle.sweep.ports import SweepPorts

        await operations.reconcile_dead_letters(services)
        sweep = services.jobs.find(SweepPorts)  # the sweep's and the reset's runs share one store
        return await ledger_status(services, sweep.runs if sweep is not None else None)

    report = asyncio.run(with_services(go))
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
    else:
        print_status(report)
    dead_letters = sum(q["deadLetters"] for q in report["queues"].values())
    needs_attention = dead_letters or report["workItems"].get("failed") or report["attention"]
    raise typer.Exit(ExitCode.ATTENTION if needs_attention else ExitCode.OK)


@app.command()
def failed(
    kind: KindOption = None,
    reason: ReasonOption = None,
    partner: PartnerOption = None,
    since: SinceOption = None,
    as_json: JsonOption = False,
) -> None:
    """List failed and dead-lettered work items, newest first, with why they failed."""
    from lifecycle.ledger import operations

    selector = Selector(kind=kind, reason=reason, partner=partner, since=_since(since))

    async def go(services):
        await operations.reconcile_dead_letters(services)
        return await operations.list_failed(services, selector)

    items = asyncio.run(with_services(go))
    rows = [
        {
            "key": i.key,
            "kind": i.kind,
            "status": i.status.value,
            "attempts": i.attempts,
            "partner": i.partner,
            "updated": i.updated.isoformat() if i.updated else None,
            "error": (i.last_error or {}).get("code") or (i.last_error or {}).get("type"),
            "message": (i.last_error or {}).get("message"),
            "requestId": (i.last_error or {}).get("requestId"),
            "next": (i.last_error or {}).get("next"),  # the exact command, where the failure names one
        }
        for i in items
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        table = Table(title=f"{len(rows)} failed work item(s)")
        for column in ("key", "kind", "status", "attempts", "error", "message"):
            table.add_column(column)
        for r in rows:
            table.add_row(
                cell(r["key"]),
                cell(r["kind"]),
                cell(r["status"]),
                cell(r["attempts"]),
                cell(r["error"]),
                cell(str(r["message"])[:80]),
            )
        console.print(table)
    raise typer.Exit(ExitCode.ATTENTION if rows else ExitCode.OK)


@app.command()
def show(
    wanted: Annotated[
        str,
        typer.Argument(
            metavar="KEY|TICKET|EMAIL|OBJECT_ID",
            help="A work item's key (ticket:RITM0042001), a ticket id, a guest's email or its object id.",
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """Everything about a work item: status, attempts, last error, result and its audit history.

    An email or an object id can name several tickets (an onboard, then an extend): each is shown; --json
    then prints a list instead of one object."""
    from lifecycle.ledger import operations
    from lifecycle.ledger.naming import resolve_keys

    async def go(services) -> list[dict[str, Any]]:
        keys = await resolve_keys(services, wanted)
        return [story for key in keys if (story := await operations.show(services, key)) is not None]

    stories = asyncio.run(with_services(go))
    if not stories:
        console.print(
            f"[red]no work item {esc(wanted)}[/red] (hint: give a key, a ticket id, an email or an object id; "
            "python -m lifecycle failed lists failed keys)"
        )
        raise typer.Exit(ExitCode.NOTHING_MATCHED)
    if as_json:
        typer.echo(json.dumps(stories[0] if len(stories) == 1 else stories, indent=2, default=str))
        return
    for story in stories:
        _print_story(story)


def _print_story(story: dict[str, Any]) -> None:
    head = f"({esc(story['kind'])}) {esc(story['status'])}, {story['attempts']} attempt(s)"
    console.print(f"[bold]{esc(story['key'])}[/bold] {head}")
    if story["lastDay"]:
        console.print(f"last day: {story['lastDay']}", markup=False)
    if story["lastError"]:
        console.print(f"last error: {json.dumps(story['lastError'], default=str)}", markup=False)
    if story["rejection"]:
        console.print(f"rejected: {story['rejection']['code']}: {story['rejection']['message']}", markup=False)
    for event in story["history"]:
        console.print(f"  {event['at']}  {event['action']}  {event['reason']}", markup=False)


DEAD_LETTER_COLUMNS = ("key", "kind", "displayName", "mail", "partner", "sponsor", "dueDate", "reason")


async def selected_dead_letters(
    services, queue: str, wanted: tuple[str, ...], selector: Selector
) -> list[dict[str, Any]]:
    """The dead letters a replay or purge would touch, each with its ticket's guest; a --key may be a ticket
    id, an email or an object id as well as a key."""
    from lifecycle.ledger.naming import dead_letter_rows, resolve_keys

    if wanted:
        keys = set(wanted)
        for text in wanted:
            keys.update(await resolve_keys(services, text))
        selector = replace(selector, keys=tuple(sorted(keys)))
    return await dead_letter_rows(services, queue, selector)


@app.command()
def replay(
    queue: QueueOption = "onboarding",
    key: KeyOption = None,
    kind: KindOption = None,
    reason: ReasonOption = None,
    all_: Annotated[bool, typer.Option("--all", help="Replay every dead letter of the queue.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be sent; change nothing.")] = False,
    yes: YesOption = False,
    export_to: ExportOption = None,
    as_json: JsonOption = False,
    remote: RemoteOption = None,
) -> None:
    """Send dead letters back to their queue (new message id, same idempotency key), then remove them.

    --key takes a key, a ticket id, an email or an object id. The dead letters are listed first (guest,
    partner, sponsor, last day, why); --all asks for "replay N" typed back (--yes in scripts). With --remote
    the function app's identity replays exactly the listed dead letters."""
    from lifecycle.ledger import operations

    if not (key or kind or reason or all_):
        raise typer.BadParameter("name what to replay: --key, --kind, --reason, or --all")
    check_queue(queue, QUEUES, "dead letters to replay", "--queue")
    check_export(export_to)
    watch.resumable(
        "a replayed dead letter has left the dead-letter queue and keeps its idempotency key; running the same "
        "command again lists and replays only the ones still there"
    )
    url = remote_url(remote) if dry_run else require_app_identity(remote_url(remote), "replay")
    if url is not None:
        raise typer.Exit(
            run_remote(
                url,
                "replay",
                {"queue": queue, "keys": list(key or ()), "kind": kind, "reason": reason, "all": all_},
                title=lambda rows: f"{len(rows)} dead letter(s) to replay on {queue}",
                phrase=(lambda rows: f"replay {len(rows)}") if all_ else None,
                yes=yes,
                export_to=export_to,
                label="replay --all" if all_ else "replay",
                as_json=as_json,
                nothing_matched=f"no dead letter on {queue} matches the selection, nothing replayed",
                plan_only=dry_run,
            )
        )
    selector = Selector(kind=kind, reason=reason)

    async def decided(services) -> list[dict[str, Any]]:
        rows = await selected_dead_letters(services, queue, tuple(key or ()), selector)
        if not rows:
            raise _nothing_matched(queue, "replayed")
        if not dry_run:
            title = f"{len(rows)} dead letter(s) to replay on {queue}"
            # Only --all asks: a replay named by key sends back what was named (the list still shows it).
            phrase, asked = (f"replay {len(rows)}", yes) if all_ else ("", True)
            command = "replay --all" if all_ else "replay"
            decide(
                title,
                rows,
                DEAD_LETTER_COLUMNS,
                phrase,
                yes=asked,
                export_to=export_to,
                command=command,
                as_json=as_json,
            )
        chosen = Selector(message_ids=tuple(r["messageId"] for r in rows))
        return await operations.replay(services, queue, chosen, dry_run=dry_run, operator=operator())

    results = asyncio.run(with_services(decided))
    if as_json:
        typer.echo(json.dumps(results, indent=2))
    else:
        for r in results:
            console.print(f"{r['key']}: {r['action']} {r.get('messageId', '')}", markup=False)
        if results:
            console.print(f"{len(results)} dead letter(s) {'would be replayed' if dry_run else 'handled'}")
    if not results:
        raise _nothing_matched(queue, "replayed")


@app.command()
def purge(
    queue: QueueOption = "onboarding",
    key: KeyOption = None,
    kind: KindOption = None,
    reason: ReasonOption = None,
    all_: Annotated[bool, typer.Option("--all", help="Purge every dead letter of the queue.")] = False,
    yes: YesOption = False,
    export_to: ExportOption = None,
    queue_typed: Annotated[
        str | None, typer.Option("--yes-i-am-sure", hidden=True, help="Older scripts: the queue name, as --yes.")
    ] = None,
    remote: RemoteOption = None,
) -> None:
    """Delete dead letters for good, with an audit row each. Lists them first, then asks for "purge N" typed
    back (--yes in scripts); exactly the listed dead letters are purged (with --remote, by the function app's
    identity)."""
    from lifecycle.ledger import operations

    if not (key or kind or reason or all_):
        raise typer.BadParameter("name what to purge: --key, --kind, --reason, or --all")
    check_queue(queue, QUEUES, "dead letters to purge", "--queue")
    check_export(export_to)
    watch.resumable("a purged dead letter is gone; running the same command again lists and purges only the rest")
    if queue_typed is not None and queue_typed != queue:
        raise fail(ExitCode.FAILED, "not confirmed; nothing purged", f"--yes-i-am-sure takes the queue name ({queue})")
    url = require_app_identity(remote_url(remote), "purge")
    if url is not None:
        raise typer.Exit(
            run_remote(
                url,
                "purge",
                {"queue": queue, "keys": list(key or ()), "kind": kind, "reason": reason, "all": all_},
                title=lambda rows: f"{len(rows)} dead letter(s) to purge for good from {queue}",
                phrase=lambda rows: f"purge {len(rows)}",
                yes=yes or queue_typed is not None,
                export_to=export_to,
                label="purge",
                as_json=False,
                nothing_matched=f"no dead letter on {queue} matches the selection, nothing purged",
            )
        )
    selector = Selector(kind=kind, reason=reason)

    async def decided(services) -> list[str]:
        rows = await selected_dead_letters(services, queue, tuple(key or ()), selector)
        if not rows:
            raise _nothing_matched(queue, "purged")
        decide(
            f"{len(rows)} dead letter(s) to purge for good from {queue}",
            rows,
            DEAD_LETTER_COLUMNS,
            f"purge {len(rows)}",
            yes=yes or queue_typed is not None,
            export_to=export_to,
            command="purge",
        )
        chosen = Selector(message_ids=tuple(r["messageId"] for r in rows))
        return await operations.purge(services, queue, chosen, operator=operator())

    purged = asyncio.run(with_services(decided))
    if not purged:
        raise _nothing_matched(queue, "purged")
    console.print(f"purged {len(purged)} dead letter(s)")


def _nothing_matched(queue: str, what: str) -> typer.Exit:
    """Naming dead letters that are not there is worth a distinct exit code: a script learns its key was wrong."""
    Console(stderr=True, soft_wrap=True).print(
        f"nothing matched: no dead letter on {queue} matches the selection, nothing {what} (hint: python -m "
        f"lifecycle failed lists what failed; --queue picks one of {', '.join(QUEUES)})",
        markup=False,
        highlight=False,
    )
    return typer.Exit(ExitCode.NOTHING_MATCHED)


@app.command()
def report(
    out: Annotated[Path, typer.Option(help="Folder for guest-posture.html and guest-posture.md.")] = Path("reports"),
    as_json: JsonOption = False,
) -> None:
    """Write the guest-posture report (self-contained HTML and markdown) and record today's snapshot."""
    from lifecycle import report as posture_report
    from lifecycle.reporting.files import write_failure, write_report

    async def go(services):
        posture = await posture_report.collect(services)
        await posture_report.record_snapshot(services, posture)
        return posture

    try:
        written = write_report(asyncio.run(with_services(go)), out)
    except Exception as exc:
        notice = write_failure(out, datetime.now(UTC), explain(exc)[1])
        kept = notice.get("lastGoodHtml")
        Console(stderr=True, soft_wrap=True).print(
            f"no report written: {notice['html']} now says this report failed"
            + (f"; the last good one is {kept}" if kept else ""),
            markup=False,
            highlight=False,
        )
        raise
    if as_json:
        typer.echo(json.dumps(written))
    else:
        totals = ", ".join(f"{k} {v}" for k, v in written["totals"].items())
        console.print(f"wrote {written['html']} and {written['markdown']}: {totals}", markup=False)
