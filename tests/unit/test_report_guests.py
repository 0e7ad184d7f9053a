"""The report's guest table, job outcomes and drift: the sweep's judgement shown per guest, by name."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import timedelta

from lifecycle import report
from lifecycle.dates import end_of
from lifecycle.models import DirectoryUser
from lifecycle.plans import Mode
from lifecycle.reporting.chart import line_chart
from lifecycle.reporting.guests import NO_SIGN_IN_ACTIVITY, guest_table, next_step
from lifecycle.reporting.links import guest_link
from lifecycle.reporting.page import content_security_policy, script_hash
from lifecycle.runs.model import DailyRun, RunStatus
from lifecycle.sweep.model import NoticeRecord
from lifecycle.sweep.planner import PlanTally, ledger_index, plan_page
from lifecycle.sweep.ports import SignInActivityUnavailable, SweepPorts
from lifecycle.sweep.rules import SweepPolicy
from tests.report_tenant import HOSTILE_NAME, PROTECTED_GROUP, report_tenant


async def _rows_by_key():
    tenant = await report_tenant()
    table = await guest_table(tenant.services)
    by_id = {row.object_id: row for row in table.rows}
    return tenant, table, {key: by_id[object_id] for key, object_id in tenant.ids.items()}


async def test_each_guest_shows_the_sweep_rule_that_acts_next_and_when():
    """Due tonight, due later, and never: each guest's next step is the sweep's rule with its instant."""
    tenant, _, rows = await _rows_by_key()
    now = tenant.services.clock.now()
    assert (rows["tom"].next.action, rows["tom"].next.rule) == ("disable", "invitation-not-redeemed")
    assert rows["tom"].next.at == now - timedelta(days=10)  # pending 40 days, the rule holds after 30
    # End dates are inclusive last days: access ends when the day is over.
    assert (rows["jonas"].next.rule, rows["jonas"].end) == ("past-end-date", end_of((now - timedelta(days=2)).date()))
    assert (rows["lena"].next.rule, rows["lena"].next.at) == (
        "past-end-date",
        end_of((now + timedelta(days=10)).date()),
    )
    # Northwind's own inactivity rule is 60 days: seen 50 days ago, due in 10.
    assert (rows["sam"].next.rule, rows["sam"].next.at) == ("inactive", now + timedelta(days=10))
    # Disabled by the product 10 days ago, 30 days of grace: deleted in 20 days.
    assert (rows["priya"].next.action, rows["priya"].next.rule) == ("delete", "disabled-past-grace")
    assert rows["priya"].next.at == now + timedelta(days=20)
    assert (rows["maria"].next.rule, rows["maria"].next.note) == (None, "protected-group")
    assert (rows["kai"].next.rule, rows["kai"].next.note) == (None, "partner-opt-out")


async def test_the_guests_due_now_are_exactly_the_ones_the_sweep_plans():
    """No second judgement: the rows whose next step is due now are the sweep planner's actions, rule for rule."""
    tenant, table, _ = await _rows_by_key()
    services = tenant.services
    now = services.clock.now()
    ports = services.jobs.find(SweepPorts)
    assert ports is not None
    members = await ports.membership.group_member_ids(PROTECTED_GROUP)
    policy = SweepPolicy(services.desired, frozenset(members))
    guests = list(tenant.directory.users.values())
    run = DailyRun("sweep-check", Mode.PLAN, RunStatus.PLANNING, now)
    planned = await plan_page(run, guests, policy, await ledger_index(services.guests), {}, PlanTally())
    due_now = {(r.object_id, r.next.action, r.next.rule) for r in table.rows if r.next.at and r.next.at <= now}
    assert due_now == {(a.object_id, a.action.value, a.rule.value) for a in planned}
    assert len(due_now) == 3


async def test_each_row_names_the_guest_its_partner_sponsor_state_and_last_day():
    """Display name, mail, partner (by the ledger, else by domain), the ledger's sponsor, state, last sign-in."""
    tenant, _, rows = await _rows_by_key()
    now = tenant.services.clock.now()
    lena = rows["lena"]
    assert (lena.display_name, lena.mail, lena.partner, lena.sponsor) == (
        "Lena Fischer",
        "lena@fabrikam.com",
        "fabrikam",
        "anna.berg@contoso.com",
    )
    assert (lena.state, lena.last_sign_in) == ("active", now - timedelta(days=3))
    assert (rows["tom"].state, rows["priya"].state) == ("pending", "disabled")
    assert rows["noor"].partner == "fabrikam" and rows["ana"].partner is None


class NoLicence:
    """Guest reads in a tenant without P1/P2: Graph refuses any read that selects signInActivity."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.selects: list[tuple[str, ...]] = []

    async def list_guests(self, select: Sequence[str], page_size: int = 999) -> AsyncIterator[list[DirectoryUser]]:
        self.selects.append(tuple(select))
        if "signInActivity" in select:
            raise SignInActivityUnavailable("no Microsoft Entra ID P1/P2 licence")
        async for page in self.inner.list_guests(select, page_size):
            yield page

    async def get_user(self, user_id: str) -> DirectoryUser | None:
        return await self.inner.get_user(user_id)


async def test_without_a_premium_licence_last_sign_in_is_unknown_and_the_inactivity_rule_is_left_out():
    """Graph's 403 on signInActivity: the pass runs again without it, rows say unknown, no guest is due for
    inactivity (as in the sweep), and the page says why."""
    tenant = await report_tenant(reads=NoLicence)
    services = tenant.services
    ports = services.jobs.find(SweepPorts)
    assert ports is not None and isinstance(ports.guest_reads, NoLicence)
    reads = ports.guest_reads
    table = await guest_table(services)
    assert reads.selects[0] != reads.selects[1] and "signInActivity" not in reads.selects[1]
    assert table.sign_in_known is False and table.warnings == [NO_SIGN_IN_ACTIVITY]
    assert all(row.last_sign_in is None for row in table.rows)
    assert "inactive" not in {row.next.rule for row in table.rows}
    page = report.to_html(await report.collect(services))
    assert ">unknown</td>" in page and "P1 or P2" in page


async def test_the_nights_outcomes_come_from_the_run_store_drift_reports_and_audit():
    """Sweep from its run row, drift from its report, governance from its audit row; the reset never ran."""
    tenant = await report_tenant()
    posture = await report.collect(tenant.services)
    by_job = {o.job: o for o in posture.outcomes}
    assert by_job["guest-sweep"].outcome == "planned" and "disable 3" in by_job["guest-sweep"].detail
    assert by_job["policy-drift"].outcome == "drift"
    assert by_job["governance"].outcome == "clean"
    assert (by_job["redemption-reset"].outcome, by_job["redemption-reset"].runs) == ("no run recorded", 0)


async def test_drift_names_the_partner_not_only_its_tenant_id():
    """A partner policy's drift row carries the partner's display name from the desired-state file."""
    tenant = await report_tenant()
    posture = await report.collect(tenant.services)
    partners = {row.key: row.partner for row in posture.drift if row.resource == "crossTenantAccessPolicy/partners"}
    assert partners["9a3d526c-1b7e-4c2f-8d6a-5e0f3b7c9d21"] == "Fabrikam, Inc."
    assert "Northwind Traders" in partners.values()
    page = report.to_html(posture)
    assert "<td>Fabrikam, Inc.</td><td>crossTenantAccessPolicy/partners</td>" in page


async def test_every_guest_links_to_its_page_in_the_entra_admin_center():
    """The guest's name is a link to its overview in the admin center, in the report's tenant."""
    tenant = await report_tenant()
    posture = await report.collect(tenant.services)
    page = report.to_html(posture)
    link = guest_link(tenant.services.settings.tenant_id, tenant.ids["lena"])
    assert link.startswith(f"https://entra.microsoft.com/{tenant.services.settings.tenant_id}/#view/")
    assert f'href="{html.escape(link)}"' in page
    assert "CrossTenantAccessSettings" in page


async def test_a_hostile_display_name_is_text_in_the_html_and_no_script_but_the_filter_may_run():
    """The name is escaped (no tag, no attribute break-out), and the page's CSP allows only the filter script."""
    tenant = await report_tenant()
    page = report.to_html(await report.collect(tenant.services))
    assert "<img src=x" not in page and '<script>document.title="owned"' not in page
    assert html.escape(HOSTILE_NAME, quote=True) in page
    assert page.count("<script>") == 1
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert csp and csp.group(1) == content_security_policy() and script_hash() in csp.group(1)
    assert "default-src 'none'" in csp.group(1)


async def test_the_trend_is_drawn_as_lines_with_no_dots():
    """One polyline per state through every day's point; no circle markers; a single day is a level line."""
    tenant = await report_tenant()
    page = report.to_html(await report.collect(tenant.services))
    for state in report.STATES:
        points = re.search(rf'class="series-{state}"[^>]* points="([^"]+)"', page)
        assert points and len(points.group(1).split()) == 8  # seven snapshots and today
    assert "<circle" not in page
    alone = line_chart([("2026-11-23", {"active": 3})], report.STATES)
    assert len(re.search(r'class="series-active"[^>]* points="([^"]+)"', alone).group(1).split()) == 2


async def test_the_markdown_twin_carries_the_guest_table_outcomes_and_drift():
    """The markdown has the same guests (escaped), outcomes and partner-named drift."""
    tenant = await report_tenant()
    text = report.to_markdown(await report.collect(tenant.services))
    assert "| Lena Fischer | lena@fabrikam.com | Fabrikam, Inc. | anna.berg@contoso.com | active |" in text
    assert "| redemption-reset | - | no run recorded | 0 |" in text
    assert "Fabrikam, Inc." in text.split("## Policy drift")[1].split("## Guests")[0]
    assert re.search(r"(?<!\\)<(img|script)", text) is None and "Ana \\<img" in text


def _with_notices(desired):
    notice = desired.lifecycle.sponsor_notice.model_copy(update={"enabled": True, "lead_days": 14})
    return desired.model_copy(update={"lifecycle": desired.lifecycle.model_copy(update={"sponsor_notice": notice})})


async def test_with_sponsor_notices_the_next_step_is_the_notice_then_the_disable_after_the_lead_time():
    """Notices on (14 days): a guest due in 30 days is told in 16; one due in 10 is told tonight; once told
    two days ago, its disable comes when the notice is 14 days old (in 12), not at the due date (in 10)."""
    tenant = await report_tenant()
    services = tenant.services
    now = services.clock.now()
    policy = SweepPolicy(_with_notices(services.desired))
    user = tenant.directory.users[tenant.ids["lena"]]
    record = await services.guests.get(tenant.ids["lena"])
    assert record is not None

    later = replace(record, end_date=now + timedelta(days=30))
    step = next_step(user, later, policy, now)
    assert (step.action, step.rule, step.at) == ("notify-sponsor", "past-end-date", now + timedelta(days=16))

    soon = replace(record, end_date=now + timedelta(days=10))
    step = next_step(user, soon, policy, now)
    assert (step.action, step.at) == ("notify-sponsor", now - timedelta(days=4))  # due now: the sweep plans it

    told = NoticeRecord(user.id, due=now + timedelta(days=10), notified=now - timedelta(days=2))
    step = next_step(user, soon, policy, now, notice=told)
    assert (step.action, step.rule, step.at) == ("disable", "past-end-date", now + timedelta(days=12))


async def test_a_guest_in_a_sponsor_gone_period_shows_the_disable_at_its_end_unless_another_rule_comes_first():
    """The mark the sponsor-reassign worker left names the next step: the disable when the period ends (the report
    reads no sponsors; the sweep confirms them before acting). An earlier rule still comes first."""
    tenant = await report_tenant()
    services = tenant.services
    now = services.clock.now()
    lifecycle = services.desired.lifecycle.model_copy(update={"sponsor_gone_days": 30})
    policy = SweepPolicy(services.desired.model_copy(update={"lifecycle": lifecycle}))
    user = tenant.directory.users[tenant.ids["lena"]]
    record = await services.guests.get(tenant.ids["lena"])
    assert record is not None

    marked = replace(record, sponsor_gone_since=now - timedelta(days=10), end_date=now + timedelta(days=200))
    step = next_step(user, marked, policy, now)
    assert (step.action, step.rule, step.at) == ("disable", "sponsor-gone", now + timedelta(days=20))
    ending = replace(marked, end_date=now + timedelta(days=5))
    assert next_step(user, ending, policy, now).rule == "past-end-date"
    assert next_step(user, replace(marked, sponsor_gone_since=None), policy, now).rule != "sponsor-gone"
