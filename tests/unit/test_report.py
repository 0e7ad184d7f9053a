"""The guest-posture report built from the directory, the ledger, the job ledger and the audit trail."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

from lifecycle import report
from lifecycle.models import GuestRecord, GuestState, WorkItem, WorkStatus
from tests.builders import memory_services
from tests.fakes import FakeDirectory


async def _services():
    directory = FakeDirectory()
    active = directory.add_guest("lena@fabrikam.com")
    pending = directory.add_guest("tom@fabrikam.com", state="PendingAcceptance")
    directory.users[pending.id] = replace(pending, external_user_state_changed=pending.created)
    directory.add_guest("x@gmail.com")
    disabled = directory.add_guest("priya@northwindtraders.com")
    directory.users[disabled.id] = replace(disabled, account_enabled=False)
    services = memory_services(directory)
    now = services.clock.now()
    await services.guests.save(
        GuestRecord(active.id, "lena@fabrikam.com", "fabrikam", GuestState.ACTIVE, end_date=now + timedelta(days=10))
    )
    failed = await services.work_items.create(
        WorkItem("ticket:T9", "onboard", WorkStatus.FAILED, created=now, updated=now)
    )
    failed.last_error = {"code": "Authorization_RequestDenied", "message": "Insufficient privileges"}
    await services.work_items.save(failed)
    return services


async def test_the_posture_counts_guests_by_partner_and_state():
    """Guests are attributed to partners by domain; unknown domains are shown as such."""
    posture = await report.collect(await _services())
    assert posture.by_partner["fabrikam"] == {"active": 1, "pending": 1}
    assert posture.by_partner["northwind"] == {"disabled": 1}
    assert posture.by_partner["(no partner)"] == {"active": 1}
    assert posture.pending_by_age["> 90 days"] == 1


async def test_expiries_and_failures_are_listed():
    """Ledger end dates within 30 days and failed work items appear in their sections."""
    posture = await report.collect(await _services())
    assert [e["email"] for e in posture.expiring] == ["lena@fabrikam.com"]
    assert posture.failures[0]["error"] == "Authorization_RequestDenied"


async def test_snapshots_build_the_history_one_point_per_day():
    """Each day's last snapshot is one point of the over-time chart; today is always included."""
    services = await _services()
    posture = await report.collect(services)
    await report.record_snapshot(services, posture)
    services.clock.advance(timedelta(days=1))
    later = await report.collect(services)
    assert [day for day, _ in later.history] == ["2026-11-23", "2026-11-24"]


async def test_the_html_is_self_contained_and_has_every_section():
    """No external references; each section id is present and the chart is inline SVG."""
    page = report.to_html(await report.collect(await _services()))
    for section in ("by-partner", "pending", "expiring", "failures", "plans", "history"):
        assert f'id="{section}"' in page
    assert "<svg" in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "src=" not in page and "<link" not in page


async def test_the_markdown_has_the_partner_table():
    """The markdown twin carries the same partner counts."""
    text = report.to_markdown(await report.collect(await _services()))
    assert "| fabrikam | 1 | 1 | 0 | 2 |" in text


HOSTILE = (
    "Ana <img src=x onerror=alert(1)> [click](https://evil.example) | x |\n# owned ![i](https://e.example/p) `code`"
)


def _hostile_text_leaks(text: str) -> list[str]:
    """What of HOSTILE would render as something other than text."""
    pieces = ("<img", "[click](", "![i](", "\n# owned", "`code`", "| x |")
    return [piece for piece in pieces if re.search(r"(?<!\\)" + re.escape(piece), text)]


async def test_the_markdown_report_shows_hostile_text_as_text():
    """A failure message (Graph echoes input, a display name among it) and a work item key with markup,
    HTML and table pipes stay text: no tag, link, image, heading, code span or extra column."""
    services = await _services()
    now = services.clock.now()
    item = await services.work_items.create(
        WorkItem(f"message:{HOSTILE}", "ticket", WorkStatus.FAILED, created=now, updated=now)
    )
    item.last_error = {"code": "Request_BadRequest", "message": HOSTILE}
    await services.work_items.save(item)
    text = report.to_markdown(await report.collect(services))
    failures = text.split("## Recent failures")[1].split("##")[0]
    assert _hostile_text_leaks(failures) == []
    assert "&lt;img" not in failures and "\\<img" in failures


def test_a_drift_plan_in_markdown_keeps_hostile_values_inside_their_cells():
    """A value read from the tenant (a partner's display name) can neither add columns nor inject HTML."""
    from lifecycle.plans import Action, Change, FieldDiff, Plan

    action = Action(
        "crossTenantAccessPolicy/partners",
        "fabrikam",
        Change.UPDATE,
        "drift",
        (FieldDiff("displayName", "Fabrikam", HOSTILE),),
    )
    text = Plan("policy-drift", [action]).to_markdown()
    [row] = [line for line in text.splitlines() if line.startswith("| crossTenantAccessPolicy")]
    assert _hostile_text_leaks(row) == [] and len(re.findall(r"(?<!\\)\|", row)) == 7


async def test_the_last_configuration_plans_show_the_waivers_in_force():
    """A drift run recorded with its waivers (as the CLI records it) lists them in both renderings of the report."""
    from lifecycle.ledger.status import record_run

    services = await _services()
    waivers = (
        "partners.fabrikam inboundTrust.isCompliantDeviceAccepted: active, owner megan@contoso.com, until 2026-12-15"
    )
    await record_run(services, "policy-drift", {"mode": "plan", "drift": 0, "exitCode": 0, "waivers": waivers})
    posture = await report.collect(services)
    assert "waivers: partners.fabrikam inboundTrust.isCompliantDeviceAccepted" in report.to_markdown(posture)
    assert "owner megan@contoso.com, until 2026-12-15" in report.to_html(posture)
