"""Plans are data: what a configuration job would change, field by field, and why.

The same Plan is printed in plan mode, applied in enforce mode and written to the audit trail. Policy
drift and governance share it, so their output, exit codes and audit rows look alike.
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from lifecycle.markdown import md

EXIT_CLEAN, EXIT_ERROR, EXIT_DRIFT = 0, 1, 2


class Mode(enum.StrEnum):
    """How a job runs: plan (compute and show what it would do, write nothing) or enforce (apply it)."""

    PLAN = "plan"
    ENFORCE = "enforce"


class Change(enum.StrEnum):
    NONE = "none"
    CREATE = "create"
    UPDATE = "update"
    RECREATE = "recreate"  # Graph cannot patch this in place: delete and create
    DELETE = "delete"
    REPORT = "report"  # drift that is shown but never written (e.g. Conditional Access posture)


@dataclass(frozen=True, slots=True)
class FieldDiff:
    field: str
    desired: Any
    actual: Any


@dataclass(frozen=True, slots=True)
class Action:
    resource: str  # e.g. crossTenantAccessPolicy/partners, accessReviews/definitions
    key: str  # the stable key the desired state names it by
    change: Change
    reason: str
    diffs: tuple[FieldDiff, ...] = ()
    payload: dict[str, Any] = field(default_factory=dict)  # what apply would send, for review and audit

    @property
    def is_drift(self) -> bool:
        return self.change is not Change.NONE


@dataclass(frozen=True, slots=True)
class Refusal:
    """A guardrail refused the desired state: nothing is applied while any refusal stands."""

    rule: str
    message: str


@dataclass
class Plan:
    job: str
    actions: list[Action] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def drift(self) -> list[Action]:
        return [a for a in self.actions if a.is_drift]

    @property
    def exit_code(self) -> int:
        if self.refusals:
            return EXIT_ERROR
        return EXIT_DRIFT if self.drift else EXIT_CLEAN

    def as_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "drift": len(self.drift),
            "actions": [_action_dict(a) for a in self.actions],
            "refusals": [asdict(r) for r in self.refusals],
            "warnings": list(self.warnings),
        }

    def to_markdown(self) -> str:
        lines = [f"## {self.job} plan: {len(self.drift)} change(s)", ""]
        for refusal in self.refusals:
            lines.append(f"- **refused** {md(refusal.rule)}: {md(refusal.message)}")
        for warning in self.warnings:
            lines.append(f"- warning: {md(warning)}")
        if self.refusals or self.warnings:
            lines.append("")
        lines += ["| resource | key | action | field | desired | actual |", "|---|---|---|---|---|---|"]
        for action in self.drift:
            rows = action.diffs or (FieldDiff("", "", ""),)
            for diff in rows:
                lines.append(
                    f"| {md(action.resource)} | {md(action.key)} | {action.change.value} | {md(diff.field)} "
                    f"| {_cell(diff.desired)} | {_cell(diff.actual)} |"
                )
        if not self.drift:
            lines.append("| | | no drift | | | |")
        return "\n".join(lines) + "\n"

    def to_text(self, width: int = 60) -> str:
        """One line per changed field, for terminals: `change resource key field: actual -> desired`."""
        lines = [f"{self.job}: {len(self.drift)} change(s)"]
        lines += [f"  refused {r.rule}: {r.message}" for r in self.refusals]
        lines += [f"  warning: {w}" for w in self.warnings]
        for action in self.drift:
            head = f"  {action.change.value:<8} {action.resource} {action.key}"
            if not action.diffs:
                lines.append(f"{head}: {action.reason}")
            for diff in action.diffs:
                lines.append(f"{head} {diff.field}: {_short(diff.actual, width)} -> {_short(diff.desired, width)}")
        if not self.drift and not self.refusals:
            lines.append("  no drift")
        return "\n".join(lines)


def _short(value: Any, width: int) -> str:
    text = "(inherit/none)" if value is None else value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= width else text[: width - 1] + "…"


def _action_dict(action: Action) -> dict[str, Any]:
    data = asdict(action)
    data["change"] = action.change.value
    return data


def _cell(value: Any) -> str:
    if value is None:
        return "*(none)*"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return md(text[:120])
