"""Bulk onboarding rows: both CSV formats, deterministic ticket ids, a per-row verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.desired_state import load_desired_state
from config.settings import SAMPLE_DESIRED_STATE
from lifecycle.errors import InputError
from lifecycle.onboarding.bulk import RowDefaults, batch_id, plan_rows, read_rows
from tests.builders import NOW

DESIRED = load_desired_state(SAMPLE_DESIRED_STATE)
ENTRA_TEMPLATE = (
    "version:v1.0\n"
    "Email address to invite [inviteeEmail] Required,Redirection url [inviteRedirectURL] Required,"
    "Send invitation message (true or false) [sendEmail],Customized invitation message [customizedMessageBody]\n"
    "lena@fabrikam.com,https://myapps.microsoft.com,true,Welcome\n"
    "mallory@gmail.com,https://myapps.microsoft.com,false,\n"
)
OWN = (
    "ticketId,email,displayName,partner,sponsor,endDate\n"
    "T-1,priya@northwindtraders.com,Priya,northwind,megan.bowen@contoso.com,2027-01-31\n"
    "T-2,bad address,Bad,northwind,megan.bowen@contoso.com,2027-01-31\n"
)


def test_the_entra_bulk_invite_template_becomes_tickets_with_partners_from_the_domain(tmp_path: Path):
    """The portal template (version line, bracketed names) maps onto tickets; the partner comes from the domain."""
    path = tmp_path / "entra.csv"
    path.write_text(ENTRA_TEMPLATE)
    defaults = RowDefaults("megan.bowen@contoso.com", None, NOW.date().replace(year=2027, month=2))
    results = plan_rows(read_rows(path), DESIRED, NOW, defaults, "b")
    good, bad = results
    assert good.accepted and good.document["partner"] == "fabrikam" and good.document["message"] == "Welcome"
    assert not bad.accepted and bad.code == "unknown-partner" and "gmail.com" in bad.reason


def test_own_columns_give_a_verdict_per_row_with_the_reason(tmp_path: Path):
    """Each row is accepted or rejected with the same codes the queue handler would use."""
    path = tmp_path / "own.csv"
    path.write_text(OWN)
    first, second = plan_rows(read_rows(path), DESIRED, NOW, RowDefaults(), "b")
    assert first.accepted and first.ticket_id == "T-1"
    assert not second.accepted and second.code == "invalid-ticket" and "email" in second.reason


def test_the_same_file_gives_the_same_ticket_ids(tmp_path: Path):
    """Generated ticket ids derive from the file's content, so a re-run is deduplicated downstream."""
    path = tmp_path / "entra.csv"
    path.write_text(ENTRA_TEMPLATE)
    assert batch_id(path) == batch_id(path)
    ids = [r.ticket_id for r in plan_rows(read_rows(path), DESIRED, NOW, RowDefaults(), batch_id(path))]
    assert ids == [f"{batch_id(path)}-00001", f"{batch_id(path)}-00002"]


def test_an_unknown_column_is_refused_up_front(tmp_path: Path):
    """A misspelt header fails before anything is planned, naming the column."""
    path = tmp_path / "typo.csv"
    path.write_text("emial,partner\nx@fabrikam.com,fabrikam\n")
    with pytest.raises(InputError, match="emial"):
        read_rows(path)
