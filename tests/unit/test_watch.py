"""What the operator sees while long work runs: the progress bar, the closing line, the Ctrl-C message."""

from __future__ import annotations

import asyncio
import io
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from app.cli import watch
from lifecycle import progress


def _terminal() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=True, width=120, color_system=None), buffer


def test_a_step_on_a_terminal_draws_a_bar_with_counts_and_an_eta():
    """On a terminal each step is a bar: its label, done of total, and the time remaining."""
    console, buffer = _terminal()
    watcher = watch.TerminalWatcher(console)
    with progress.watching(watcher), progress.step("sending tickets to onboarding", total=40, unit="ticket") as sent:
        for _ in range(4):
            sent.advance(10)
    watcher.stop()
    drawn = buffer.getvalue()
    assert "sending tickets to onboarding (tickets)" in drawn
    assert re.search(r"40/40 eta \d+:\d\d:\d\d", drawn), drawn  # done of total, then the time remaining
    assert "\x1b[" in drawn  # drawn live, with cursor control, as a terminal gets it


def test_without_a_terminal_nothing_is_drawn_but_the_steps_are_remembered():
    """A pipe or a file (scripts, --json) gets no bar, yet the closing line still knows what was done."""
    buffer = io.StringIO()
    watcher = watch.TerminalWatcher(Console(file=buffer, force_terminal=False))
    with progress.watching(watcher), progress.step("working onboarding", total=3, unit="message") as worked:
        worked.advance(3)
    watcher.stop()
    assert buffer.getvalue() == ""
    [step] = watcher.steps
    assert (step.done, step.finished) == (3, True)


def test_steps_reach_the_watcher_from_inside_asyncio_run():
    """The core reports from coroutines run by asyncio.run in a command: the watcher set around it hears them."""

    async def core_work() -> None:
        with progress.step("planning sweep-2026-12-06", unit="guest", run_id="sweep-2026-12-06") as examined:
            examined.advance(100)
            await asyncio.sleep(0)
            examined.advance(5)

    watcher = watch.TerminalWatcher(Console(file=io.StringIO()))
    with progress.watching(watcher):
        asyncio.run(core_work())
    [step] = watcher.steps
    assert (step.label, step.done, step.total) == ("planning sweep-2026-12-06", 105, None)
    assert step.run_id == "sweep-2026-12-06"


def test_nobody_watching_costs_nothing_and_fails_nothing():
    """In the Functions host no watcher is installed: steps still count and nothing is printed."""
    with progress.step("fanning out", total=2, unit="action") as fanned:
        fanned.advance(2)
    assert fanned.finished and fanned.left == 0


def test_a_step_that_grows_past_its_total_keeps_its_count_honest():
    """A queue that received retries while being worked ends with done == total, never done > total."""
    with progress.step("working guest-actions", total=2, unit="message") as worked:
        worked.advance(3)
    assert (worked.done, worked.total) == (3, 3)


def test_an_interrupted_step_says_what_was_done_what_is_left_and_how_to_resume():
    """Ctrl-C in a sweep without --run-id: the resume command names the run, so tomorrow's date cannot start a
    different one; the reason resuming is safe is said once."""
    session = watch.Session(["run", "guest-sweep", "--mode", "enforce", "-v"], watch.TerminalWatcher(Console()))
    session.resume = watch.Resume(None, "the run is kept under its id", run_id_option=True)
    with pytest.raises(KeyboardInterrupt), progress.watching(session.watcher):
        with progress.step("planning sweep-2026-12-06", unit="guest", run_id="sweep-2026-12-06") as planning:
            planning.advance(300)
        with progress.step("fanning out sweep-2026-12-06", total=88, unit="action") as fanning:
            fanning.advance(40)
            raise KeyboardInterrupt
    message = session.interrupted_message()
    assert "done: planning sweep-2026-12-06: 300 guest(s)" in message
    assert "stopped in fanning out sweep-2026-12-06: 40 action(s) done, 48 left" in message
    assert "resume with: python -m lifecycle run guest-sweep --mode enforce --run-id sweep-2026-12-06" in message
    assert "resuming is safe: the run is kept under its id" in message
    assert "-v" not in message.split("resume with:")[1].splitlines()[0]


def test_a_command_that_declared_no_resume_says_only_what_was_done():
    """A read-only command interrupted claims nothing about resuming."""
    session = watch.Session(["status"], watch.TerminalWatcher(Console()))
    assert "resume" not in session.interrupted_message()
    assert session.closing_line() is None  # no long work: no closing line either


def test_the_log_file_defaults_to_a_dated_file_under_dot_lifecycle_and_obeys_the_setting():
    """LIFECYCLE_LOG_FILE wins; otherwise .lifecycle/logs/lifecycle-YYYYMMDD.log under the working directory."""
    day = datetime(2026, 12, 6, 23, 59, tzinfo=UTC)
    assert watch.log_file({}, day) == Path(".lifecycle/logs/lifecycle-20261206.log")
    assert watch.log_file({"LIFECYCLE_LOG_FILE": "/var/log/x.log"}, day) == Path("/var/log/x.log")


def test_each_counts_an_item_once_its_loop_body_is_done_continue_included():
    """Loops with early `continue` (held governance changes) still count every item; an item whose body
    raised is not counted as done."""
    with pytest.raises(RuntimeError), progress.step("applying governance changes", total=4, unit="change") as applied:
        for n in applied.each(range(4)):
            if n == 0:
                continue
            if n == 2:
                raise RuntimeError("Graph refused")
    assert (applied.done, applied.left, applied.finished) == (2, 2, False)


def test_work_can_ask_whether_anybody_watches_before_paying_for_a_total():
    """Outside a command nobody watches (the host's workers skip sizing the bar); inside one somebody does."""
    assert not progress.watched()
    with progress.watching(watch.TerminalWatcher(Console(file=io.StringIO()))):
        assert progress.watched()
    assert not progress.watched()


def test_a_watched_queue_drain_is_sized_by_the_queue_and_counts_every_message():
    """`run onboarding` and the sweep's worker: the bar's total is the queue's depth when the work began, and
    each settled message (rejected ones too) moves it on."""
    from lifecycle.ledger.outcomes import Outcome, Verdict
    from lifecycle.ledger.worker import drain
    from lifecycle.models import OutboundMessage
    from tests.builders import memory_services

    services = memory_services()
    queue = services.settings.queue_name("guest-actions")
    junk = [OutboundMessage(b"{not json", f"m-{n}", f"k-{n}", "guest-action") for n in range(3)]
    watcher = watch.TerminalWatcher(Console(file=io.StringIO()))

    async def refuse(message, _services) -> Outcome:
        return Outcome(message.key, Verdict.REJECTED, "malformed-action", "not a planned action")

    async def work():
        await services.transport.send(queue, junk)
        return await drain(services, "guest-actions", refuse, idle_rounds=1)

    with progress.watching(watcher):
        report = asyncio.run(work())
    assert len(report.outcomes) == 3
    [worked] = watcher.steps
    assert (worked.label, worked.total, worked.done, worked.finished) == ("working guest-actions", 3, 3, True)
