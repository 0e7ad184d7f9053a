"""What the operator sees while a command works: quiet logs, a progress bar, a closing line, a clean Ctrl-C.

- Logs: the command line is console mode (config.logging): every record goes to the log file (``log_file``),
  only warnings and errors reach the terminal; ``-v``/``--verbose`` brings info back to the terminal.
- Progress: the core reports its long steps (lifecycle.progress); ``TerminalWatcher`` draws them with rich on
  stderr with an ETA, only when stderr is a terminal, so ``--json`` on stdout stays pure JSON and a pipe
  gets no control codes.
- The closing line: after a command that did long work, one line on stderr with what was done, how long it
  took and where the log is.
- Ctrl-C: one short message with what was done, what was left, the command that resumes and why resuming is
  safe; exit code 130 (the shell's code for SIGINT), never a traceback.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from config.logging import ConsoleLogs, configure_console, console_logs
from lifecycle import progress
from lifecycle.progress import Step

LOG_FILE_SETTING = "LIFECYCLE_LOG_FILE"
DEFAULT_LOG_DIR = Path(".lifecycle") / "logs"
VERBOSE_FLAGS = ("-v", "--verbose")
INTERRUPTED = 130  # 128 + SIGINT, what shells report for a command stopped by Ctrl-C


def log_file(env: Mapping[str, str], today: datetime) -> Path:
    """``LIFECYCLE_LOG_FILE``, or ``.lifecycle/logs/lifecycle-YYYYMMDD.log`` under the working directory."""
    named = env.get(LOG_FILE_SETTING, "").strip()
    return Path(named) if named else DEFAULT_LOG_DIR / f"lifecycle-{today:%Y%m%d}.log"


def quiet_console_logs(verbose: bool, env: Mapping[str, str] | None = None) -> ConsoleLogs:
    """Console mode for a command line run: the log file at the settings' level, the terminal from warnings
    (from info with ``verbose``)."""
    env = os.environ if env is None else env
    logs = ConsoleLogs(log_file(env, datetime.now(UTC)), "INFO" if verbose else "WARNING")
    configure_console(logs, json=env.get("LIFECYCLE_LOG_FORMAT", "json") != "console")
    return logs


def storytelling() -> None:
    """The demo tells its own story, warnings included (a brake tripping is part of it): only errors reach
    the terminal, unless ``-v`` asked for more."""
    logs = console_logs()
    if logs is not None and logs.terminal_level == "WARNING":
        configure_console(replace(logs, terminal_level="ERROR"))


class TerminalWatcher:
    """Draws the core's steps as rich progress bars (with an ETA once a total is known) and remembers them."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.steps: list[Step] = []
        self._bars: Progress | None = None
        self._tasks: dict[int, TaskID] = {}

    @property
    def drawing(self) -> bool:
        return self.console.is_terminal

    def _progress(self) -> Progress:
        if self._bars is None:
            self._bars = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=False,
            )
            self._bars.start()
        return self._bars

    def started(self, step: Step) -> None:
        self.steps.append(step)
        if self.drawing:
            self._tasks[id(step)] = self._progress().add_task(_described(step), total=step.total)

    def updated(self, step: Step) -> None:
        task = self._tasks.get(id(step))
        if task is not None and self._bars is not None:
            self._bars.update(task, completed=step.done, total=step.total)

    def ended(self, step: Step) -> None:
        task = self._tasks.pop(id(step), None)
        if task is not None and self._bars is not None:
            total = step.total if step.total is not None else step.done
            self._bars.update(task, completed=step.done, total=total if step.finished else step.total)
        if not self._tasks:
            # Nothing is moving: leave the last bars on the screen and let the command print below them.
            self.stop()

    def stop(self) -> None:
        if self._bars is not None:
            self._bars.stop()
            self._bars = None


def _described(step: Step) -> str:
    return f"{step.label} ({step.unit}s)"


@dataclass
class Resume:
    """How a command is resumed after Ctrl-C, and why doing so is safe."""

    command: str | None
    safe: str
    run_id_option: bool = False  # append --run-id with the run the steps named, when the command had none


@dataclass
class Session:
    """One command's watch: its steps, when it began, and what Ctrl-C should say."""

    argv: Sequence[str]
    watcher: TerminalWatcher
    began: float = field(default_factory=time.monotonic)
    resume: Resume | None = None

    def elapsed(self) -> str:
        seconds = time.monotonic() - self.began
        return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"

    def resume_command(self) -> str | None:
        if self.resume is None:
            return None
        if self.resume.command is not None:
            return self.resume.command
        argv = [a for a in self.argv if a not in (*VERBOSE_FLAGS, "--debug")]
        run_ids = [s.run_id for s in self.watcher.steps if s.run_id]
        if self.resume.run_id_option and run_ids and "--run-id" not in argv:
            argv += ["--run-id", run_ids[-1]]
        return shlex.join(["python", "-m", "lifecycle", *argv])

    def closing_line(self) -> str | None:
        """After long work: what each step did, the time it took, where the log is."""
        if not self.watcher.steps:
            return None
        did = "; ".join(f"{s.label}: {s.done} {s.unit}(s)" for s in self.watcher.steps)
        return f"done in {self.elapsed()}: {did}{_log_hint()}"

    def interrupted_message(self) -> str:
        lines = [f"interrupted after {self.elapsed()}; nothing more is being done."]
        finished = [s for s in self.watcher.steps if s.finished]
        current = [s for s in self.watcher.steps if not s.finished]
        if finished:
            lines.append("done: " + "; ".join(f"{s.label}: {s.done} {s.unit}(s)" for s in finished))
        for s in current:
            left = f"{s.left} left" if s.left is not None else "the rest left"
            lines.append(f"stopped in {s.label}: {s.done} {s.unit}(s) done, {left}")
        command = self.resume_command()
        if command and self.resume is not None:
            lines.append(f"resume with: {command}")
            lines.append(f"resuming is safe: {self.resume.safe}")
        lines.append(_log_hint().removeprefix("; ") or "")
        return "\n".join(line for line in lines if line)


def _log_hint() -> str:
    logs = console_logs()
    return f"; the log: {logs.file}" if logs is not None and logs.file is not None else ""


_session: Session | None = None


def resumable(safe: str, command: str | None = None, run_id_option: bool = False) -> None:
    """Declare, from a command, how it is resumed after Ctrl-C (default: the same command line again)."""
    if _session is not None:
        _session.resume = Resume(command, safe, run_id_option)


@contextlib.contextmanager
def session(argv: Sequence[str], watcher: TerminalWatcher | None = None) -> Iterator[Session]:
    """Watch one command: the core's steps go to ``watcher`` for the command's duration."""
    global _session
    current = Session(list(argv), watcher or TerminalWatcher())
    _session = current
    try:
        with progress.watching(current.watcher):
            yield current
    finally:
        current.watcher.stop()
        _session = None
