"""The daily guest-report job on the local stack: tenantsim's guests in, the report out to Azurite's blob service."""

from __future__ import annotations

import html
import re
import uuid

import pytest
from azure.storage.blob.aio import ContainerClient

from adapters.report_blobs import BlobReportStore, MemoryReportStore
from app.bootstrap import bootstrap
from config.settings import load_settings
from graph.credentials import TenantSimCredential
from graph.permissions import GRANTED
from lifecycle.reporting import entry
from tenantsim.client import TenantSimAdmin

pytestmark = pytest.mark.stack


@pytest.fixture
def tenant(local_stack):
    with TenantSimAdmin(local_stack.tenantsim_url) as admin:
        admin.seed(builtin="fresh", guests=120, random_seed=3)
        yield admin
        admin.configure(entraIdPremium=True)


async def _services(stack, container: str):
    suffix = uuid.uuid4().hex[:8]
    env = {
        **stack.env,
        "LIFECYCLE_TABLE_PREFIX": f"rp{suffix}",
        "LIFECYCLE_QUEUE_PREFIX": f"rp{suffix}-",
        "LIFECYCLE_REPORTS_CONTAINER": container,
    }
    credential = TenantSimCredential(stack.tenantsim_url, roles=GRANTED | {"GroupMember.Read.All"})
    return await bootstrap(load_settings(env), credential=credential)


async def _read(stack, container: str) -> dict[str, tuple[str, str]]:
    """Every blob in the container: name -> (content type, text)."""
    client = ContainerClient.from_connection_string(stack.tables_connection_string, container)
    try:
        found = {}
        async for blob in client.list_blobs():
            download = await client.download_blob(blob.name)
            found[blob.name] = (blob.content_settings.content_type, (await download.readall()).decode("utf-8"))
        return found
    finally:
        await client.close()


def _guest_pass(admin: TenantSimAdmin, since: int) -> list[dict]:
    return [r for r in admin.requests()[since:] if r["method"] == "GET" and r["path"].endswith("/users")]


async def test_the_timer_job_writes_latest_and_a_dated_copy_to_the_reports_container(local_stack, tenant):
    """One streamed guest pass with $select; latest.html and YYYY-MM-DD/guest-posture.html (and .md) in the
    container, HTML served as HTML, one row per guest of the tenant, and the run recorded."""
    container = f"reports-{uuid.uuid4().hex[:8]}"
    services = await _services(local_stack, container)
    before = len(tenant.requests())
    try:
        summary = await entry.on_timer(services, past_due=False)
        day = services.clock.now().date().isoformat()
        status = [e async for e in services.audit.entries() if e.action == "job.run"]
    finally:
        await services.close()
    blobs = await _read(local_stack, container)
    assert set(blobs) == {"latest.html", "latest.md", f"{day}/guest-posture.html", f"{day}/guest-posture.md"}
    content_type, page = blobs["latest.html"]
    assert content_type.startswith("text/html") and page == blobs[f"{day}/guest-posture.html"][1]
    guests = [u for u in tenant.snapshot()["users"] if u.get("userType") == "Guest"]
    assert summary["guests"] == len(guests) == len(re.findall(r'<tr data-partner="', page))
    assert summary["latest"].endswith(f"/{container}/latest.html")
    assert len(_guest_pass(tenant, before)) == 1  # 120 guests: one page of the one pass, no per-guest read
    # The $select named displayName (tenantsim returns only what is selected) and the last sign-in was read.
    named = next(u for u in guests if u.get("displayName"))
    assert html.escape(named["displayName"]) in page
    last_sign_ins = re.findall(r'class="state-\w+">\w+</td><td class="date">([^<]*)</td>', page)
    assert len(last_sign_ins) == len(guests) and any(re.fullmatch(r"\d{4}-\d\d-\d\d", d) for d in last_sign_ins)
    assert [e.details["status"] for e in status if e.details.get("job") == "guest-report"] == ["ok"]


async def test_without_a_premium_licence_the_daily_report_says_last_sign_in_is_unknown(local_stack, tenant):
    """tenantsim refuses signInActivity as Graph does without P1/P2: the report is still written, with
    'unknown' sign-ins and the reason on the page."""
    container = f"reports-{uuid.uuid4().hex[:8]}"
    tenant.configure(entraIdPremium=False)
    services = await _services(local_stack, container)
    try:
        summary = await entry.on_timer(services, past_due=False)
    finally:
        await services.close()
    page = (await _read(local_stack, container))["latest.html"][1]
    assert summary["status"] == "ok" and ">unknown</td>" in page and "P1 or P2" in page
    assert "<td>inactive" not in page


@pytest.mark.parametrize("kind", ["blob", "memory"])
async def test_both_report_stores_replace_a_document_and_keep_its_content_type(azurite, kind):
    """The contract the fake shares with Azure Blob Storage (Azurite): a second put under a name replaces the
    first, the content type is kept, and the returned location ends with the name."""
    settings = load_settings({**azurite.env, "LIFECYCLE_REPORTS_CONTAINER": f"contract-{uuid.uuid4().hex[:8]}"})
    store = BlobReportStore.from_settings(settings) if kind == "blob" else MemoryReportStore()
    assert store is not None
    try:
        await store.put("2026-11-23/guest-posture.html", b"<p>first</p>", "text/html; charset=utf-8")
        where = await store.put("2026-11-23/guest-posture.html", b"<p>second</p>", "text/html; charset=utf-8")
    finally:
        await store.close()
    assert where.endswith("/2026-11-23/guest-posture.html")
    if kind == "blob":
        found = await _read(azurite, settings.reports_container)
        assert found == {"2026-11-23/guest-posture.html": ("text/html; charset=utf-8", "<p>second</p>")}
    else:
        assert store.documents == {"2026-11-23/guest-posture.html": ("text/html; charset=utf-8", b"<p>second</p>")}
