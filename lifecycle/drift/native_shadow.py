"""Shadow evaluation: what each guest lifecycle policy would do on its first evaluation, before it is switched on.

One streamed pass over the guests, with the sweep's own listing and projection (lifecycle.sweep.planner's select,
page size and ledger index, signInActivity and the expanded sponsors), judges every guest against every declared
policy the way the native engine documents its rules. Per policy it keeps: how many guests the policy governs,
which it would act on (a count and a sample of names), how many of those the product's sweep also judges, and which
the product's safety gate protects (a guest the native engine would reach although the product never touches it:
the gate's rules over the protected group's members read once with the scope, as the sweep's planning reads them).

The rules are judged from what the product can read; what it cannot read is counted as not judged, never guessed:
- inactivity: the latest sign-in (or, never signed in, the creation date) older than the threshold; not judged
  without signInActivity (no P1/P2 licence);
- sponsorPresence: fewer live sponsors than the minimum, from the expanded sponsors;
- invitationRedemption: an invitation still pending longer than the threshold;
- periodicAttestation: an estimate, since attestations made in Microsoft's own flow are not readable: due once
  the interval has passed since the guest's creation. The product's own attestation tickets are not counted: they
  live in the product's ledger, which Microsoft's engine never sees, so counting them would shrink the estimate
  the deletion brake judges (and a ticketing system could shrink it at will) below what the engine will do;
- accessPackageAssignmentRequired: not judged (the sweep's expiry index cannot tell "no assignment" from "an
  assignment without end").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from config.desired_state import DesiredState
from config.lifecycle_policies import NativePolicy, NativeRule
from lifecycle.drift.native_scope import PolicyScope
from lifecycle.models import DirectoryUser, GuestRecord
from lifecycle.safety import SafetyGate
from lifecycle.sweep.planner import GUEST_SELECT, GUEST_SELECT_WITHOUT_SIGN_IN, PAGE_SIZE, SPONSORS, ledger_index
from lifecycle.sweep.ports import GuestReads, SignInActivityUnavailable
from lifecycle.sweep.rules import SweepPolicy

SAMPLE = 5
NOT_JUDGED = "accessPackageAssignmentRequired"


@dataclass
class PolicyShadow:
    """What one policy would do to the tenant's guests on its first evaluation."""

    key: str
    action: str
    governed: int = 0
    would_act: set[str] = field(default_factory=set)  # the product's judgement: noncompliant guest ids
    names: dict[str, str] = field(default_factory=dict)  # those guests' names (mail or display name)
    sample: list[str] = field(default_factory=list)
    sweep_overlap: int = 0  # governed guests the sweep also judges
    overlap_partners: Counter[str] = field(default_factory=Counter)
    protected: list[str] = field(default_factory=list)  # guests the native engine would act on; the gate refuses
    nested_excluded: int = 0  # governed only because native honours direct membership only
    not_judged: Counter[str] = field(default_factory=Counter)
    ineffective: int = 0  # guests in its scope that a higher-priority policy binds: it never evaluates for them
    evaluated: bool = True  # False: no guest pass was made (no policy is or will be on)

    @property
    def verb(self) -> str:
        return "delete" if self.action == "deleteOnly" else "disable"

    def sentence(self) -> str:
        if not self.evaluated:
            return "not evaluated: no guest lifecycle policy of the file is or will be on"
        names = ", ".join(self.sample) + (" ..." if len(self.would_act) > len(self.sample) else "")
        text = (
            f"on its first evaluation it would {self.verb} {len(self.would_act)} of {self.governed} governed guest(s)"
        )
        if names:
            text += f" (e.g. {names})"
        if self.not_judged:
            text += "; not judged: " + ", ".join(f"{rule} for {n}" for rule, n in sorted(self.not_judged.items()))
        return text


@dataclass
class Shadow:
    total: int = 0
    policies: dict[str, PolicyShadow] = field(default_factory=dict)
    governed: int = 0  # guests governed by a policy that is or will be on (the licence meter)
    several: int = 0  # guests in the scope of more than one such policy: only the highest-priority one binds them
    sign_in_activity: bool = True


async def evaluate(
    desired: DesiredState,
    policies: dict[str, NativePolicy],
    scopes: dict[str, PolicyScope],
    binding: Sequence[str],
    reads: GuestReads,
    ledger: object,
    gate: SafetyGate,
    now: datetime,
) -> Shadow:
    """Judge every guest against every policy in one pass. ``binding`` are the policies that are or will be on, in
    priority order: a guest in the scope of several is governed by the first only (the others never evaluate for
    it), and counts once towards the licence meter. A policy that is off is judged as if alone. With none on, no
    pass is made."""
    shadow = Shadow(policies={k: PolicyShadow(k, p.action.kind) for k, p in policies.items()})
    if not binding:
        # Nothing will act on a guest: no reason to enumerate the tenant every hour.
        for found in shadow.policies.values():
            found.evaluated = False
        return shadow
    records: dict[str, GuestRecord] = await ledger_index(ledger)  # type: ignore[arg-type]
    sweep = SweepPolicy(desired)
    try:
        await _pass(shadow, (*GUEST_SELECT, SPONSORS), policies, scopes, binding, reads, records, sweep, gate, now)
    except SignInActivityUnavailable:
        shadow = Shadow(
            policies={k: PolicyShadow(k, p.action.kind) for k, p in policies.items()}, sign_in_activity=False
        )
        select = (*GUEST_SELECT_WITHOUT_SIGN_IN, SPONSORS)
        await _pass(shadow, select, policies, scopes, binding, reads, records, sweep, gate, now)
    return shadow


async def _pass(
    shadow: Shadow,
    select: tuple[str, ...],
    policies: dict[str, NativePolicy],
    scopes: dict[str, PolicyScope],
    binding: Sequence[str],
    reads: GuestReads,
    records: dict[str, GuestRecord],
    sweep: SweepPolicy,
    gate: SafetyGate,
    now: datetime,
) -> None:
    async for page in reads.list_guests(select, page_size=PAGE_SIZE):
        for user in page:
            if not user.is_guest:
                continue
            shadow.total += 1
            record = records.get(user.id)
            holding = [key for key in binding if user.id not in (scopes.get(key) or PolicyScope()).direct]
            for key, policy in policies.items():
                scope = scopes.get(key) or PolicyScope()
                if user.id in scope.direct:
                    continue
                found = shadow.policies[key]
                if key in binding and key != holding[0]:
                    found.ineffective += 1
                    continue
                found.governed += 1
                if user.id in scope.transitive:
                    found.nested_excluded += 1
                partner = sweep.partner_of(user, record)
                if _sweep_judges(user, partner, sweep, scope):
                    found.sweep_overlap += 1
                    found.overlap_partners[partner or "(no partner)"] += 1
                if await _noncompliant(policy, user, record, now, found.not_judged, shadow.sign_in_activity):
                    found.would_act.add(user.id)
                    found.names[user.id] = name_of(user)
                    if len(found.sample) < SAMPLE:
                        found.sample.append(name_of(user))
                    if gate.planned_refusal(user, scope.protected) is not None:
                        found.protected.append(name_of(user))
            shadow.governed += bool(holding)
            shadow.several += len(holding) > 1


def name_of(user: DirectoryUser) -> str:
    return user.mail or user.display_name or user.user_principal_name or user.id


def _sweep_judges(user: DirectoryUser, partner: str | None, sweep: SweepPolicy, scope: PolicyScope) -> bool:
    """Whether the product's sweep decides this guest: not opted out by its partner, not excluded, not protected
    (the protected group's members are among the scope's transitive exclusions)."""
    if user.id.lower() in sweep.excluded_ids or user.id in scope.transitive:
        return False
    return not sweep.rules_for(partner).opt_out


async def _noncompliant(
    policy: NativePolicy,
    user: DirectoryUser,
    record: GuestRecord | None,
    now: datetime,
    not_judged: Counter[str],
    sign_in_activity: bool,
) -> bool:
    """Any enabled rule violated makes the guest noncompliant; a rule that cannot be judged is counted, not guessed."""
    violated = False
    for rule in policy.rules:
        if not rule.enabled:
            continue
        verdict = _violates(rule, user, record, now, sign_in_activity)
        if verdict is None:
            not_judged[rule.type] += 1
        violated |= bool(verdict)
    return violated


def _violates(
    rule: NativeRule, user: DirectoryUser, record: GuestRecord | None, now: datetime, sign_in_activity: bool
) -> bool | None:
    days = timedelta(days=rule.days or 0)
    if rule.type == "inactivity":
        if not sign_in_activity:
            return None
        return now - last_activity(user, now) > days
    if rule.type == "sponsorPresence":
        if user.sponsors is None:
            return None
        live = [s for s in user.sponsors if s.account_enabled is not False]
        return len(live) < (rule.minimum_sponsors or 1)
    if rule.type == "invitationRedemption":
        if user.external_user_state != "PendingAcceptance":
            return False
        since = user.external_user_state_changed or user.created
        return None if since is None else now - since > days
    if rule.type == "periodicAttestation":
        return None if user.created is None else now - user.created > days
    return None  # accessPackageAssignmentRequired


def last_activity(user: DirectoryUser, now: datetime) -> datetime:
    """The latest activity the native engine may count. The inactivity rule's page does not say which sign-ins
    count; the harsher reading (tenantsim's, lifecycle-policies.md: lastSignInDateTime and
    lastSuccessfulSignInDateTime, no non-interactive token refresh) is the one the estimate takes, so the deletion
    brake judges at least as many guests as the engine may act on, never fewer."""
    activity = user.sign_in_activity
    seen = [
        d
        for d in (
            activity.last_sign_in if activity else None,
            activity.last_successful_sign_in if activity else None,
        )
        if d is not None
    ]
    return max(seen) if seen else (user.created or now)
