"""A drift run: the shared Plan plus what enforce mode applied and what failed, and the stored report."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from lifecycle.drift.fields import LICENCE_EXPOSURE, SHADOW_EVALUATION, Evidence
from lifecycle.drift.waivers import WaiverStatus
from lifecycle.markdown import md
from lifecycle.plans import EXIT_CLEAN, EXIT_DRIFT, EXIT_ERROR, Action, Change, Mode, Plan

WRITABLE_CHANGES = frozenset({Change.CREATE, Change.UPDATE, Change.DELETE, Change.RECREATE})
ESTIMATES = frozenset({SHADOW_EVALUATION, LICENCE_EXPOSURE})  # the product's estimates, not settings left alone


@dataclass(frozen=True, slots=True)
class ApplyResult:
    resource: str
    key: str
    change: str
    ok: bool
    error: dict[str, Any] | None = None


@dataclass
class DriftPlan(Plan):
    """The shared Plan plus what only policy drift has: the waivers in the file and the evidence of settings the
    product leaves alone (unmanaged properties and properties it has never seen). Neither is drift."""

    evidence: list[Evidence] = field(default_factory=list)
    waivers: list[WaiverStatus] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = super().as_dict()
        data.update(evidence=[asdict(e) for e in self.evidence], waivers=[asdict(w) for w in self.waivers])
        return data

    def to_markdown(self) -> str:
        text = super().to_markdown()
        lines: list[str] = []
        if self.waivers:
            lines += ["", "### waivers", "", "| target | field | waived value | owner | expires | state | reason |"]
            lines.append("|---|---|---|---|---|---|---|")
            for w in self.waivers:
                state = "active" if w.state == "active" else "**expired: drift**"
                lines.append(
                    f"| {md(w.target)} | {md(w.field)} | {_json_cell(w.value)} | {md(w.owner)} | {md(w.expires)} "
                    f"| {state} | {md(w.reason)} |"
                )
        left_alone = [e for e in self.evidence if e.kind not in ESTIMATES]
        estimates = [e for e in self.evidence if e.kind in ESTIMATES]
        for heading, found in (
            ("evidence: settings this product leaves alone (never drift, never written)", left_alone),
            ("estimates: what the guest lifecycle policies would do and cost (never drift, never written)", estimates),
        ):
            if not found:
                continue
            lines += ["", f"### {heading}", ""]
            lines += ["| resource | key | field | kind | value | why |", "|---|---|---|---|---|---|"]
            for e in found:
                lines.append(
                    f"| {md(e.resource)} | {md(e.key)} | {md(e.field)} | {md(e.kind)} | {_json_cell(e.value)} "
                    f"| {md(e.note)} |"
                )
        return text + ("\n".join(lines) + "\n" if lines else "")

    def to_text(self, width: int = 60) -> str:
        lines = [super().to_text(width)]
        for w in self.waivers:
            lines.append(f"  waiver {w.state:<7} {w.target} {w.field}: owner {w.owner}, until {w.expires}")
        for e in self.evidence:
            value = json.dumps(e.value, sort_keys=True, default=str)
            lines.append(f"  evidence {e.kind} {e.resource} {e.key} {e.field}: {value[:width]}")
        return "\n".join(lines)


def _json_cell(value: Any) -> str:
    return md(json.dumps(value, sort_keys=True, default=str)[:160])


@dataclass
class DriftRun(DriftPlan):
    """The plan of one run. In enforce mode ``results`` says, per written action, whether it landed."""

    run_id: str = ""
    mode: Mode = "plan"
    at: datetime | None = None
    results: list[ApplyResult] = field(default_factory=list)

    @property
    def failed(self) -> list[ApplyResult]:
        return [r for r in self.results if not r.ok]

    @property
    def outstanding(self) -> list[Action]:
        """Drift this run leaves behind: everything in plan mode; in enforce mode what was not applied."""
        applied = {(r.resource, r.key) for r in self.results if r.ok}
        return [a for a in self.drift if (a.resource, a.key) not in applied]

    @property
    def exit_code(self) -> int:
        if self.refusals or self.failed:
            return EXIT_ERROR
        return EXIT_DRIFT if self.outstanding else EXIT_CLEAN

    def as_dict(self) -> dict[str, Any]:
        data = super().as_dict()
        data.update(
            runId=self.run_id,
            mode=self.mode,
            at=self.at.isoformat() if self.at else None,
            exitCode=self.exit_code,
            results=[asdict(r) for r in self.results],
        )
        return data

    def to_markdown(self) -> str:
        text = super().to_markdown().replace(f"## {self.job} plan:", f"## {self.job} {self.mode} {self.run_id}:", 1)
        if not self.results:
            return text
        lines = ["", "### applied", "", "| resource | key | change | result |", "|---|---|---|---|"]
        for result in self.results:
            outcome = "applied" if result.ok else f"**failed**: {_error_text(result.error)}"
            lines.append(f"| {md(result.resource)} | {md(result.key)} | {md(result.change)} | {outcome} |")
        return text + "\n".join(lines) + "\n"


def _error_text(error: dict[str, Any] | None) -> str:
    if not error:
        return "unknown error"
    return md(f"{error.get('status')} {error.get('code') or ''} {error.get('message', '')}"[:200])


@dataclass(frozen=True, slots=True)
class DriftReport:
    """What the report store keeps per run: the run as JSON and as markdown."""

    run_id: str
    at: datetime
    mode: str
    exit_code: int
    drift: int
    failed: int
    document: dict[str, Any]
    markdown: str

    @classmethod
    def of(cls, run: DriftRun) -> DriftReport:
        assert run.at is not None
        return cls(
            run_id=run.run_id,
            at=run.at,
            mode=run.mode,
            exit_code=run.exit_code,
            drift=len(run.drift),
            failed=len(run.failed),
            document=json.loads(json.dumps(run.as_dict(), default=str)),
            markdown=run.to_markdown(),
        )
