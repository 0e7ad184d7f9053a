"""The report's interactive parts as HTML: the guest table with its filters and search, the night's job
outcomes, the drift by partner, and the inline script that filters.

Names, mail addresses, sponsors and Graph's messages are attacker-controlled (a guest picks its own display
name): every value goes through ``html.escape`` (quotes included, so attribute values stay attribute values),
the script only reads text and toggles ``hidden`` (no innerHTML, no eval), and the page's Content Security
Policy allows no script but this one, by its hash, and no request to anywhere: even a value that slipped
through escaping could not run or load anything.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from datetime import datetime
from html import escape

from lifecycle.dates import shown_end
from lifecycle.reporting.guests import GuestRow, GuestTable
from lifecycle.reporting.links import cross_tenant_access_link, external_collaboration_link, guest_link
from lifecycle.reporting.outcomes import DriftRow, Outcome

NO_PARTNER = "(no partner)"

FILTER_SCRIPT = """
(function () {
  var table = document.getElementById('guest-table');
  var controls = {partner: document.getElementById('filter-partner'), state: document.getElementById('filter-state'),
    rule: document.getElementById('filter-rule')};
  var search = document.getElementById('guest-search');
  var count = document.getElementById('guest-count');
  function apply() {
    var needle = search.value.trim().toLowerCase();
    var shown = 0;
    var rows = table.tBodies[0].rows;
    for (var i = 0; i < rows.length; i++) {
      var row = rows[i];
      var keep = true;
      for (var name in controls) {
        var wanted = controls[name].value;
        if (wanted && row.getAttribute('data-' + name) !== wanted) { keep = false; }
      }
      if (keep && needle && row.textContent.toLowerCase().indexOf(needle) < 0) { keep = false; }
      row.hidden = !keep;
      if (keep) { shown++; }
    }
    count.textContent = shown + ' of ' + rows.length + ' guests';
  }
  for (var name in controls) { controls[name].addEventListener('change', apply); }
  search.addEventListener('input', apply);
  apply();
})();
"""


def script_hash(script: str = FILTER_SCRIPT) -> str:
    """The CSP source that allows exactly ``script`` (CSP Level 2 hash source)."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii") + "'"


def content_security_policy() -> str:
    return (
        f"default-src 'none'; script-src {script_hash()}; style-src 'unsafe-inline'; img-src data:; "
        "base-uri 'none'; form-action 'none'"
    )


def _text(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _day(moment: datetime | None, missing: str = "") -> str:
    return f"{moment:%Y-%m-%d}" if moment is not None else missing


def _when(moment: datetime | None, missing: str = "") -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment is not None else missing


def _options(name: str, label: str, values: Iterable[str]) -> str:
    options = "".join(f'<option value="{_text(v)}">{_text(v)}</option>' for v in sorted(set(values)))
    return (
        f'<label>{label} <select id="filter-{name}" name="{name}"><option value="">all</option>{options}'
        "</select></label>"
    )


def guest_section(table: GuestTable, tenant_id: str, partner_names: dict[str, str], now: datetime) -> str:
    """The guest table: one row per guest, filter controls above it, the admin center one click away."""

    def partner_label(row: GuestRow) -> str:
        return partner_names.get(row.partner, row.partner) if row.partner else NO_PARTNER

    rows = "".join(_guest_row(row, partner_label(row), tenant_id, table.sign_in_known, now) for row in table.rows)
    if not table.rows:
        rows = '<tr data-partner="" data-state="" data-rule=""><td colspan="9">no guests</td></tr>'
    warnings = "".join(f'<p class="warning">{_text(w)}</p>' for w in table.warnings)
    controls = (
        '<div class="filters">'
        + _options("partner", "partner", (partner_label(r) for r in table.rows))
        + _options("state", "state", (r.state for r in table.rows))
        + _options("rule", "next rule", (r.next.label() for r in table.rows))
        + '<label>search <input id="guest-search" type="search" placeholder="name, mail, sponsor, id"></label>'
        + '<span id="guest-count" aria-live="polite"></span></div>'
    )
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "guest",
            "mail",
            "partner",
            "sponsor",
            "state",
            "last sign-in",
            "last day",
            "next rule",
            "when",
        )
    )
    return (
        f'<section id="guests"><h2>Guests</h2>{warnings}{controls}'
        f'<div class="scroll"><table id="guest-table"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
        "</div></section>"
    )


def _guest_row(row: GuestRow, partner: str, tenant_id: str, sign_in_known: bool, now: datetime) -> str:
    name = row.display_name or row.mail or row.object_id
    last = _day(row.last_sign_in, "never") if sign_in_known else "unknown"
    step = row.next
    if step.rule:
        rule = f"{_text(step.action)}: {_text(step.rule)}"
        when = "due now" if step.at is not None and step.at <= now else _text(_day(step.at))
    else:
        rule, when = _text(step.note), ""
    return (
        f'<tr data-partner="{_text(partner)}" data-state="{_text(row.state)}" data-rule="{_text(step.label())}">'
        f'<td><a href="{_text(guest_link(tenant_id, row.object_id))}" rel="noreferrer noopener" target="_blank">'
        f"{_text(name)}</a></td>"
        f"<td>{_text(row.mail)}</td><td>{_text(partner)}</td><td>{_text(row.sponsor or '')}</td>"
        f'<td class="state-{_text(row.state)}">{_text(row.state)}</td><td class="date">{last}</td>'
        f'<td class="date">{_text(shown_end(row.end) if row.end else "")}</td><td>{rule}</td>'
        f'<td class="date">{when}</td></tr>'
    )


def outcomes_section(outcomes: list[Outcome]) -> str:
    rows = "".join(
        f'<tr class="{"ok" if o.good else "attention"}"><td>{_text(o.job)}</td><td>{_text(_when(o.at, "-"))}</td>'
        f"<td>{_text(o.outcome)}</td><td>{o.runs}</td><td>{_text(o.detail)}</td></tr>"
        for o in outcomes
    )
    return (
        '<section id="outcomes"><h2>Last night\'s jobs (24 hours)</h2><table><tr><th>job</th><th>last run</th>'
        f"<th>outcome</th><th>runs</th><th>detail</th></tr>{rows}</table></section>"
    )


def licence_section(exposure: dict[str, object] | None) -> str:
    """What the native guest lifecycle policies may cost a month, when the desired state has them."""
    if exposure is None:
        return ""
    return f'<section id="licence"><h2>Licence exposure</h2><p>{_text(licence_sentence(exposure))}</p></section>'


def licence_sentence(exposure: dict[str, object]) -> str:
    currency = exposure.get("currency")
    return (
        f"{exposure.get('governedGuests')} guest(s) governed by native guest lifecycle policies x "
        f"{exposure.get('pricePerGovernedGuest')} {currency} = at most {exposure.get('monthly')} {currency} a month "
        f"(drift run {exposure.get('runId')}; a guest is billed in a month with a governance action)"
    )


def drift_section(run: str | None, rows: list[DriftRow], tenant_id: str) -> str:
    settings = (
        f'<p>Open <a href="{_text(cross_tenant_access_link(tenant_id))}" rel="noreferrer noopener" target="_blank">'
        "cross-tenant access settings</a> or "
        f'<a href="{_text(external_collaboration_link(tenant_id))}" rel="noreferrer noopener" target="_blank">'
        "external collaboration settings</a> in the Microsoft Entra admin center.</p>"
    )
    if run is None:
        body = "<p>policy drift has not run yet</p>"
    elif not rows:
        body = f"<p>{_text(run)}: no drift</p>"
    else:
        lines = "".join(
            f"<tr><td>{_text(r.partner or '')}</td><td>{_text(r.resource)}</td><td>{_policy_key(r, tenant_id)}</td>"
            f"<td>{_text(r.change)}</td><td>{_text(r.fields)}</td><td>{_text(r.reason)}</td></tr>"
            for r in rows
        )
        body = (
            f"<p>{_text(run)}</p><table><tr><th>partner</th><th>resource</th><th>key</th><th>change</th>"
            f"<th>fields</th><th>reason</th></tr>{lines}</table>"
        )
    return f'<section id="drift"><h2>Policy drift</h2>{settings}{body}</section>'


def _policy_key(row: DriftRow, tenant_id: str) -> str:
    """The policy's key, linked to the admin center page where that policy is set."""
    if row.resource.startswith("crossTenantAccessPolicy"):
        link = cross_tenant_access_link(tenant_id)
    elif row.resource in ("authorizationPolicy", "b2bManagementPolicies"):
        link = external_collaboration_link(tenant_id)
    else:
        return _text(row.key)
    return f'<a href="{_text(link)}" rel="noreferrer noopener" target="_blank">{_text(row.key)}</a>'


STYLE = """
#guests .filters{display:flex;gap:1rem;flex-wrap:wrap;align-items:center;margin:.5rem 0}
#guests input,#guests select{font:inherit;padding:.2rem .4rem}
#guest-count{color:#57606a}
td.date{white-space:nowrap}
.scroll{overflow-x:auto}
.state-active{color:#1a7f37}.state-pending{color:#9a6700}.state-disabled{color:#cf222e}
tr.attention td{background:#fff8c5}
.warning{background:#fff8c5;border:1px solid #d4a72c;padding:.4rem .6rem;border-radius:6px}
"""
