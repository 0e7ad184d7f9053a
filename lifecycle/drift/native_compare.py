"""After a policy is on: the product's own judgement per guest against Microsoft's per-guest compliance report.

The report (``lifecyclePolicyReport`` and its ``subjects``,
https://learn.microsoft.com/graph/api/resources/identitygovernance-lifecyclepolicysubjectreport) gives each guest's
``compliance.status`` (notEvaluated, compliant, nonCompliant) and its ``relationship`` to the policy: ``effective``,
``inScopeButIneffective`` (another policy is the one that judges the guest) or ``pending``. Disagreements are shown
both ways, as drift that is reported and never written: a guest the product finds noncompliant that Microsoft calls
compliant, and one Microsoft finds noncompliant that the product does not. A guest for whom the policy is in scope
but ineffective is a policy that never evaluates for it, flagged apart.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from lifecycle.drift.native_ports import GuestLifecyclePolicies
from lifecycle.drift.native_shadow import PolicyShadow
from lifecycle.plans import Action, Change, FieldDiff

REPORT = "identityGovernance/lifecycleWorkflows/lifecyclePolicies/report"
SAMPLE = 5


@dataclass
class Comparison:
    key: str
    processed: bool = True
    product_only: list[str] = field(default_factory=list)  # noncompliant by the product, compliant by Microsoft
    native_only: list[str] = field(default_factory=list)  # noncompliant by Microsoft, not by the product
    ineffective: int = 0
    not_evaluated: int = 0
    agreed: int = 0

    def action(self) -> Action:
        if not self.processed:
            return Action(
                REPORT, self.key, Change.NONE, "Microsoft has not processed the policy yet: nothing to compare"
            )
        if not self.product_only and not self.native_only:
            reason = f"Microsoft's compliance report agrees with the product on {self.agreed} guest(s)"
            return Action(REPORT, self.key, Change.NONE, reason)
        diffs = []
        if self.product_only:
            diffs.append(
                FieldDiff("noncompliantByProductOnly", _listed(self.product_only), "compliant in Microsoft's report")
            )
        if self.native_only:
            diffs.append(
                FieldDiff(
                    "noncompliantByMicrosoftOnly", "compliant by the product's judgement", _listed(self.native_only)
                )
            )
        disagreed = len(self.product_only) + len(self.native_only)
        reason = (
            f"the product and Microsoft's compliance report disagree on {disagreed} guest(s) "
            f"(agreed on {self.agreed}); shown, never written"
        )
        if self.native_only:
            reason += (
                f". Microsoft's engine, not the product, acts on the {len(self.native_only)} it alone finds "
                "noncompliant once their grace period ends: check them in the policy's report in the admin center, "
                "and put any who must stay directly in an excluded group (or switch the policy off: enabled: false)"
            )
        if self.product_only:
            reason += (
                f". The {len(self.product_only)} only the product finds noncompliant are left alone by Microsoft: "
                "a rule the product reads differently (see the shadow evaluation's not-judged rules), or a report "
                "older than the guests' last change"
            )
        return Action(REPORT, self.key, Change.REPORT, reason, tuple(diffs))

    def warnings(self) -> list[str]:
        if not self.ineffective:
            return []
        return [
            f"lifecycle policy {self.key} never evaluates for {self.ineffective} guest(s) in its scope by Microsoft's "
            "report: a higher-priority policy binds them (inScopeButIneffective)"
        ]


def _listed(ids: list[str]) -> str:
    shown = ", ".join(ids[:SAMPLE])
    return f"{len(ids)} guest(s): {shown}" + (" ..." if len(ids) > SAMPLE else "")


async def compare(
    key: str,
    policy_id: str,
    product: PolicyShadow,
    port: GuestLifecyclePolicies,
    name_of: Callable[[str], Awaitable[str]] | None = None,
) -> Comparison:
    """Read the policy's latest report and set it against ``product`` (the shadow pass of the same run). Guests the
    product judged are named from that pass; ``name_of`` names the first few only Microsoft judged noncompliant."""
    found = Comparison(key)
    if await port.get_report(policy_id) is None:
        found.processed = False
        return found
    async for subject in port.report_subjects(policy_id):
        guest = str((subject.get("subject") or {}).get("id") or "")
        relationship = subject.get("relationship")
        if relationship == "inScopeButIneffective":
            found.ineffective += 1
            continue
        if relationship != "effective" or not guest:
            continue
        status = (subject.get("compliance") or {}).get("status")
        ours = guest in product.would_act
        if status == "nonCompliant" and not ours:
            found.native_only.append(guest)
        elif status == "compliant" and ours:
            found.product_only.append(product.names.get(guest, guest))
        elif status in ("compliant", "nonCompliant"):
            found.agreed += 1
        else:
            found.not_evaluated += 1
    found.native_only.sort()
    if name_of is not None:
        found.native_only[:SAMPLE] = [await name_of(guest) for guest in found.native_only[:SAMPLE]]
    return found
