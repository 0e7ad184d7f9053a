"""PATCH /users/{id} of mail and otherMails: the per-property permission of the update-user page."""

from __future__ import annotations

import pytest

from tests.tenantsim.conftest import guests


def _patch(graph, user_id: str, body: dict, *roles: str):
    return graph.request("PATCH", f"/v1.0/users/{user_id}", roles=roles, json=body)


@pytest.mark.parametrize("prop", ["otherMails", "mail"])
def test_updating_mail_or_other_mails_with_user_readupdate_all_is_403(graph, admin, prop):
    """User.ReadUpdate.All is not enough for mail/otherMails by default (the doc names User-Mail.ReadWrite.All)."""
    guest = guests(admin)[0]
    value = ["extra@fabrikam.com"] if prop == "otherMails" else "extra@fabrikam.com"
    response = _patch(graph, guest["id"], {prop: value}, "User.ReadUpdate.All")
    assert response.status_code == 403 and response.json()["error"]["code"] == "Authorization_RequestDenied"
    assert next(u for u in guests(admin) if u["id"] == guest["id"])[prop] == guest[prop]


@pytest.mark.parametrize("role", ["User-Mail.ReadWrite.All", "User.ReadWrite.All", "Directory.ReadWrite.All"])
def test_other_mails_and_mail_are_updated_with_a_mail_permission(graph, admin, role):
    """User-Mail.ReadWrite.All (least privileged), User.ReadWrite.All or Directory.ReadWrite.All update them."""
    guest = guests(admin)[0]
    body = {"otherMails": [*guest["otherMails"], "extra@fabrikam.com"], "mail": guest["mail"]}
    assert _patch(graph, guest["id"], body, role).status_code == 204
    stored = next(u for u in guests(admin) if u["id"] == guest["id"])
    assert "extra@fabrikam.com" in stored["otherMails"]


def test_the_mail_permission_does_not_cover_other_properties(graph, admin):
    """A PATCH mixing otherMails and displayName needs both User-Mail.ReadWrite.All and User.ReadUpdate.All."""
    guest = guests(admin)[0]
    body = {"otherMails": guest["otherMails"], "displayName": "Renamed"}
    assert _patch(graph, guest["id"], body, "User-Mail.ReadWrite.All").status_code == 403
    assert _patch(graph, guest["id"], body, "User.ReadUpdate.All").status_code == 403
    assert _patch(graph, guest["id"], body, "User-Mail.ReadWrite.All", "User.ReadUpdate.All").status_code == 204


def test_user_readupdate_all_covers_mail_when_configured(graph, admin):
    """userReadUpdateCoversMail: the lenient reading, where User.ReadUpdate.All also updates mail and otherMails."""
    admin.configure(userReadUpdateCoversMail=True)
    guest = guests(admin)[0]
    body = {"otherMails": [*guest["otherMails"], "extra@fabrikam.com"]}
    assert _patch(graph, guest["id"], body, "User.ReadUpdate.All").status_code == 204
