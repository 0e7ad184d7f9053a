"""The guest-posture report: a self-contained HTML file (no external assets) and the same in markdown.

Sections: every guest with the sweep rule that acts on it next (filters and search in the HTML), last night's
job outcomes, the latest policy drift by partner name, the native lifecycle policies' licence exposure, guests
by partner and state, pending invitations by age, upcoming expiries, sponsor attestation (the last attestation per
guest, the guests never attested), recent failures, the last configuration plans, and guests by state over time
(lines drawn from the daily posture snapshots the report itself records in the audit trail). The parts are built
in lifecycle.reporting; the daily timer job that writes it to blob storage is lifecycle.reporting.entry.
"""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from lifecycle.dates import shown_end
from lifecycle.markdown import md
from lifecycle.models import AuditEntry, WorkStatus
from lifecycle.reporting import page
from lifecycle.reporting.chart import line_chart
from lifecycle.reporting.guests import GuestTable, guest_state, guest_table
from lifecycle.reporting.outcomes import DriftRow, Outcome, latest_drift, licence_exposure, night_outcomes
from lifecycle.services import Services

PENDING_BUCKETS = ((7, "< 7 days"), (30, "7-30 days"), (90, "30-90 days"), (None, "> 90 days"))
STATES = ("pending", "active", "disabled")
ATTESTATIONS_SHOWN = 50  # the oldest attestations and the first guests never attested, by name


@dataclass
class Posture:
    generated: datetime
    by_partner: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    pending_by_age: Counter[str] = field(default_factory=Counter)
    expiring: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    plans: list[dict[str, Any]] = field(default_factory=list)
    history: list[tuple[str, dict[str, int]]] = field(default_factory=list)
    tenant_id: str = ""
    guests: GuestTable = field(default_factory=GuestTable)
    outcomes: list[Outcome] = field(default_factory=list)
    drift_run: str | None = None
    drift: list[DriftRow] = field(default_factory=list)
    licence: dict[str, Any] | None = None  # the native lifecycle policies' monthly exposure, from the drift plan
    partner_names: dict[str, str] = field(default_factory=dict)
    # Guests this product manages (not deleted): their last attestation, oldest first, and those never attested.
    attested: list[dict[str, Any]] = field(default_factory=list)
    never_attested: list[dict[str, Any]] = field(default_factory=list)

    @property
    def totals(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for counts in self.by_partner.values():
            total.update(counts)
        return total


__all__ = ["Posture", "collect", "guest_state", "record_snapshot", "to_html", "to_markdown"]


async def collect(services: Services, *, expiring_within_days: int = 30) -> Posture:
    now = services.clock.now()
    posture = Posture(generated=now, tenant_id=services.settings.tenant_id)
    posture.partner_names = {key: p.display_name for key, p in services.desired.partners.items()}
    posture.guests = await guest_table(services)  # the one guest pass: the counts come from its rows
    for row in posture.guests.rows:
        posture.by_partner[row.partner or page.NO_PARTNER][row.state] += 1
        if row.state == "pending":
            posture.pending_by_age[_age_bucket((now - (row.pending_since or now)).days)] += 1
    posture.outcomes = await night_outcomes(services)
    posture.drift_run, posture.drift = await latest_drift(services)
    posture.licence = await licence_exposure(services)

    horizon = now + timedelta(days=expiring_within_days)
    async for record in services.guests.all():
        if record.state.value != "deleted":
            guest = {"objectId": record.object_id, "email": record.email, "partner": record.partner}
            if record.attested is not None:
                posture.attested.append(
                    guest | {"attestedAt": record.attested.isoformat(), "attestedBy": record.attested_by or ""}
                )
            else:
                posture.never_attested.append(guest)
        if record.end_date and now <= record.end_date <= horizon and record.state.value != "deleted":
            posture.expiring.append(
                {
                    "objectId": record.object_id,
                    "email": record.email,
                    "partner": record.partner,
                    "endDate": shown_end(record.end_date),
                }
            )
    posture.expiring.sort(key=lambda e: e["endDate"])  # the last day, as the ticket gave it
    posture.attested.sort(key=lambda a: a["attestedAt"])
    posture.never_attested.sort(key=lambda a: a["email"])

    for status in (WorkStatus.FAILED, WorkStatus.DEAD_LETTERED):
        async for item in services.work_items.query(status=status):
            error = item.last_error or {}
            posture.failures.append(
                {
                    "key": item.key,
                    "status": item.status.value,
                    "error": error.get("code") or error.get("type"),
                    "message": str(error.get("message", ""))[:160],
                    "updated": item.updated.isoformat() if item.updated else "",
                }
            )
    posture.failures.sort(key=lambda f: f["updated"], reverse=True)

    snapshots: list[tuple[datetime, dict[str, int]]] = []
    async for entry in services.audit.entries(since=now - timedelta(days=90)):
        if entry.action == "posture.snapshot":
            snapshots.append((entry.at, {k: int(v) for k, v in entry.details.items()}))
        elif entry.action == "job.run" and entry.details.get("job") in ("policy-drift", "governance"):
            posture.plans.append({"at": entry.at.isoformat(), **entry.details})
    posture.plans = sorted(posture.plans, key=lambda p: p["at"], reverse=True)[:10]
    # The latest snapshot of a day wins; snapshots are ordered by when they were taken, never by their counts.
    by_day = {at.date().isoformat(): counts for at, counts in sorted(snapshots, key=lambda s: s[0])}
    by_day[now.date().isoformat()] = dict(posture.totals)
    posture.history = sorted(by_day.items())
    return posture


async def record_snapshot(services: Services, posture: Posture) -> None:
    await services.audit.record(
        AuditEntry(posture.generated, "posture.snapshot", "tenant", "daily guest posture", details=dict(posture.totals))
    )


def _age_bucket(days: int) -> str:
    for limit, label in PENDING_BUCKETS:
        if limit is None or days < limit:
            return label
    return PENDING_BUCKETS[-1][1]


def to_markdown(posture: Posture) -> str:
    lines = [f"# Guest posture, {posture.generated:%Y-%m-%d %H:%M} UTC", ""]
    lines += [f"> {md(w)}" for w in posture.guests.warnings]
    lines += [
        "",
        "## Last night's jobs (24 hours)",
        "",
        "| job | last run | outcome | runs | detail |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {md(o.job)} | {o.at:%Y-%m-%d %H:%M} | {md(o.outcome)} | {o.runs} | {md(o.detail)} |"
        if o.at
        else f"| {md(o.job)} | - | {md(o.outcome)} | 0 | {md(o.detail)} |"
        for o in posture.outcomes
    ]
    lines += ["", "## Policy drift", ""]
    if posture.drift_run is None:
        lines.append("policy drift has not run yet")
    elif not posture.drift:
        lines.append(f"{md(posture.drift_run)}: no drift")
    else:
        lines += [md(posture.drift_run), "", "| partner | resource | key | change | fields |", "|---|---|---|---|---|"]
        lines += [
            f"| {md(r.partner or '')} | {md(r.resource)} | {md(r.key)} | {md(r.change)} | {md(r.fields)} |"
            for r in posture.drift
        ]
    if posture.licence is not None:
        lines += ["", "## Licence exposure", "", md(page.licence_sentence(posture.licence))]
    lines += [
        "",
        "## Guests",
        "",
        "| guest | mail | partner | sponsor | state | last sign-in | last day | next rule | when |",
    ]
    lines.append("|---" * 9 + "|")
    for row in posture.guests.rows:
        partner = posture.partner_names.get(row.partner, row.partner) if row.partner else page.NO_PARTNER
        last = (
            (f"{row.last_sign_in:%Y-%m-%d}" if row.last_sign_in else "never")
            if posture.guests.sign_in_known
            else "unknown"
        )
        step = f"{row.next.action}: {row.next.rule}" if row.next.rule else row.next.note
        end = shown_end(row.end) if row.end else ""
        when = f"{row.next.at:%Y-%m-%d}" if row.next.at else ""
        lines.append(
            f"| {md(row.display_name)} | {md(row.mail)} | {md(partner)} | {md(row.sponsor or '')} | {row.state} "
            f"| {last} | {end} | {md(step)} | {when} |"
        )
    lines += ["", "## Guests by partner and state", ""]
    lines += ["| partner | " + " | ".join(STATES) + " | total |", "|---" * (len(STATES) + 2) + "|"]
    for partner, counts in sorted(posture.by_partner.items()):
        lines.append(
            f"| {md(partner)} | " + " | ".join(str(counts[s]) for s in STATES) + f" | {sum(counts.values())} |"
        )
    lines += ["", "## Pending invitations by age", "", "| age | guests |", "|---|---|"]
    lines += [f"| {label} | {posture.pending_by_age[label]} |" for _, label in PENDING_BUCKETS]
    lines += ["", "## Upcoming expiries (30 days)", ""]
    lines += [f"- {md(e['endDate'])} {md(e['email'])} ({md(e['partner'])})" for e in posture.expiring] or ["- none"]
    lines += ["", "## Sponsor attestation", ""]
    lines += [
        f"- {md(a['attestedAt'][:10])} {md(a['email'])} ({md(a['partner'])}), by {md(a['attestedBy'])}"
        for a in posture.attested[:ATTESTATIONS_SHOWN]
    ] or ["- no attestation yet"]
    lines += ["", f"Never attested: {len(posture.never_attested)}", ""]
    lines += [f"- {md(a['email'])} ({md(a['partner'])})" for a in posture.never_attested[:ATTESTATIONS_SHOWN]]
    lines += ["", "## Recent failures", ""]
    lines += [
        f"- {md(f['key'])} {md(f['status'])}: {md(f['error'])} {md(f['message'])}" for f in posture.failures[:20]
    ] or ["- none"]
    lines += ["", "## Last configuration plans", ""]
    lines += [
        f"- {md(p['at'])} {md(p.get('job'))}: drift {md(p.get('drift', '?'))}"
        + (f"; waivers: {md(p['waivers'])}" if p.get("waivers") else "")
        for p in posture.plans
    ] or ["- none yet"]
    lines += ["", "## Guests by state over time", "", "| day | " + " | ".join(STATES) + " |", "|---" * 4 + "|"]
    lines += [f"| {day} | " + " | ".join(str(c.get(s, 0)) for s in STATES) + " |" for day, c in posture.history]
    return "\n".join(lines) + "\n"


def to_html(posture: Posture) -> str:
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(posture.partner_names.get(p, p))}</td>"
        + "".join(f"<td>{c[s]}</td>" for s in STATES)
        + f"<td>{sum(c.values())}</td></tr>"
        for p, c in sorted(posture.by_partner.items())
    )
    pending = "".join(
        f"<tr><td>{label}</td><td>{posture.pending_by_age[label]}</td></tr>" for _, label in PENDING_BUCKETS
    )
    expiring = (
        "".join(
            f"<tr><td>{esc(str(e['endDate']))}</td><td>{esc(e['email'])}</td><td>{esc(e['partner'])}</td></tr>"
            for e in posture.expiring
        )
        or "<tr><td colspan=3>none</td></tr>"
    )
    failures = (
        "".join(
            f"<tr><td>{esc(f['key'])}</td><td>{esc(str(f['status']))}</td><td>{esc(str(f['error']))}</td>"
            f"<td>{esc(f['message'])}</td></tr>"
            for f in posture.failures[:50]
        )
        or "<tr><td colspan=4>none</td></tr>"
    )
    plans = (
        "".join(
            f"<tr><td>{esc(p['at'])}</td><td>{esc(str(p.get('job')))}</td><td>{esc(str(p.get('drift', '?')))}</td>"
            f"<td>{esc(str(p.get('waivers') or ''))}</td></tr>"
            for p in posture.plans
        )
        or "<tr><td colspan=4>none yet</td></tr>"
    )
    attested = (
        "".join(
            f"<tr><td>{esc(a['attestedAt'][:10])}</td><td>{esc(a['email'])}</td><td>{esc(a['partner'])}</td>"
            f"<td>{esc(a['attestedBy'])}</td></tr>"
            for a in posture.attested[:ATTESTATIONS_SHOWN]
        )
        or "<tr><td colspan=4>no attestation yet</td></tr>"
    )
    never = "".join(
        f"<li>{esc(a['email'])} ({esc(a['partner'])})</li>" for a in posture.never_attested[:ATTESTATIONS_SHOWN]
    )
    totals = posture.totals
    guests = page.guest_section(posture.guests, posture.tenant_id, posture.partner_names, posture.generated)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{page.content_security_policy()}">
<meta name="referrer" content="no-referrer">
<title>Guest posture {posture.generated:%Y-%m-%d}</title>
<style>
body{{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1b1f24;max-width:1400px}}
h1{{font-size:1.5rem}} h2{{font-size:1.1rem;margin-top:2rem;border-bottom:1px solid #d0d7de}}
table{{border-collapse:collapse;margin:.5rem 0}} td,th{{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left}}
th{{background:#f6f8fa}} .cards{{display:flex;gap:1rem}}
.card{{border:1px solid #d0d7de;border-radius:6px;padding:.8rem 1.2rem}}
.card b{{display:block;font-size:1.6rem}}
{page.STYLE}
</style></head><body>
<h1>Guest posture <small>{posture.generated:%Y-%m-%d %H:%M} UTC</small></h1>
<div class="cards">{"".join(f'<div class="card" id="total-{s}"><b>{totals[s]}</b>{s}</div>' for s in STATES)}</div>
{page.outcomes_section(posture.outcomes)}
{guests}
{page.drift_section(posture.drift_run, posture.drift, posture.tenant_id)}
{page.licence_section(posture.licence)}
<section id="history"><h2>Guests by state over time</h2>{line_chart(posture.history, STATES)}</section>
<section id="by-partner"><h2>Guests by partner and state</h2>
<table><tr><th>partner</th>{"".join(f"<th>{s}</th>" for s in STATES)}<th>total</th></tr>{rows}</table></section>
<section id="pending"><h2>Pending invitations by age</h2>
<table><tr><th>age</th><th>guests</th></tr>{pending}</table></section>
<section id="expiring"><h2>Upcoming expiries (30 days)</h2>
<table><tr><th>last day</th><th>guest</th><th>partner</th></tr>{expiring}</table></section>
<section id="attestation"><h2>Sponsor attestation</h2>
<table><tr><th>attested</th><th>guest</th><th>partner</th><th>by</th></tr>{attested}</table>
<p id="never-attested">Never attested: {len(posture.never_attested)}</p><ul>{never}</ul></section>
<section id="failures"><h2>Recent failures</h2>
<table><tr><th>key</th><th>status</th><th>error</th><th>message</th></tr>{failures}</table></section>
<section id="plans"><h2>Last configuration plans</h2>
<table><tr><th>when</th><th>job</th><th>drift</th><th>waivers</th></tr>{plans}</table></section>
<script>{page.FILTER_SCRIPT}</script>
</body></html>
"""
