"""What `make run` tells: each job of the demo as a numbered step, what happened in a sentence, the details,
and what to look at next. No log lines: the demo asks for errors only on the terminal (app.cli.watch)."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from app.cli.common import print_status, report_summary
from app.cli.summaries import reset_summary, sweep_summary


def tell(console: Console, results: dict[str, Any], moving_domain: str, log_file: str | None) -> None:
    def chapter(number: int, title: str, happened: str) -> None:
        console.rule(f"{number}. {title}")
        console.print(happened, markup=False, highlight=False)

    def look_next(*hints: str) -> None:
        for hint in hints:
            console.print(f"  look next: {hint}", style="cyan", markup=False, highlight=False)

    onboarding = results["onboarding"]
    chapter(
        1,
        "onboarding: tickets from the ticketing system",
        f"{onboarding['processed']} ticket message(s) read: {onboarding['done']} guest(s) invited, "
        f"{onboarding['duplicates']} duplicate(s) recognised by their key, {onboarding['rejected']} rejected "
        "with a reason.",
    )
    report_summary(onboarding, False, console)
    done = [o for o in onboarding["outcomes"] if o["verdict"] == "done"]
    rejected = [o for o in onboarding["outcomes"] if o["verdict"] == "rejected"]
    look_next(
        *([f"python -m lifecycle show {done[0]['key']}   (a guest's story)"] if done else []),
        *([f"python -m lifecycle show {rejected[0]['key']}   (why a ticket was rejected)"] if rejected else []),
    )

    reset = results["redemptionReset"]
    last = reset[-1]
    chapter(
        2,
        f"redemption reset: {moving_domain} moved to its own Entra tenant",
        f"{len(reset)} run(s): refused while the new tenant was not allowed, braked once it was, approved; "
        f"{last.get('progress', {}).get('reset', 0)} guest(s) reset with their object ids kept, one message each on "
        "the guest-actions queue.",
    )
    for summary in reset:
        console.print(reset_summary(summary), highlight=False, markup=False)
    look_next(
        f"python -m lifecycle sweep show {last['runId']}   (each guest of the run and how its reset went)",
        "python -m lifecycle run redemption-reset --mode plan   (plan again: nobody is left to reset)",
    )

    for number, key, title in ((3, "policyDrift", "policy drift"), (4, "governance", "governance")):
        runs = results[key]
        before, after = runs["before"], runs["after"]
        chapter(
            number,
            f"{title}: plan, apply, plan again",
            f"the tenant differed in {before['drift']} place(s); enforce mode applied the fixes; "
            f"{after['drift']} remain (report-only checks and warnings stay listed).",
        )
        console.rule(f"{title}: before (exit {before['exitCode']})", style="dim")
        console.print(before["text"], highlight=False, soft_wrap=True, markup=False)
        console.rule(f"{title}: after (exit {after['exitCode']})", style="dim")
        console.print(after["text"], highlight=False, soft_wrap=True, markup=False)
        command = "run policy-drift" if key == "policyDrift" else "run governance"
        look_next(f"python -m lifecycle {command} --mode plan   (plan again: nothing left to fix)")

    sweep = results["sweep"]
    run_id = sweep[-1]["runId"]
    chapter(
        5,
        "guest expiry sweep: plan, enforce, brake, approval",
        f"tonight's run {run_id} planned {sweep[0]['disable']} disable(s) and {sweep[0]['delete']} delete(s); "
        + (
            "the deletion brake stopped it, an operator approved it, and the worker carried it out."
            if len(sweep) > 2
            else f"it ended {sweep[-1]['status']}."
        ),
    )
    for summary in sweep:
        console.print(sweep_summary(summary), highlight=False, markup=False)
    look_next(f"python -m lifecycle sweep show {run_id}   (the planned actions with their evidence)")

    chapter(6, "status", "what an on-call engineer checks first: queues, dead letters, work items, last runs.")
    print_status(results["status"], console)
    look_next("python -m lifecycle status   (exit 2 when something needs a person)")

    report = results["report"]
    totals = ", ".join(f"{k} {v}" for k, v in report["totals"].items())
    chapter(7, "report", f"the guest-posture report: {totals}.")
    look_next(f"open {report['html']}", f"{report['markdown']} (the same as markdown)")
    if log_file:
        console.print(f"\nevery log line of this run is in {log_file}", markup=False, highlight=False)
