"""Text from tickets goes through the CLI's Rich output as text: a ``[/x]`` or ``[bold red]`` in a ticket
field neither crashes ``show`` nor restyles the table, on the local stack."""

from __future__ import annotations

import pytest

from lifecycle.ledger.worker import drain
from lifecycle.onboarding.handler import handle_ticket
from lifecycle.onboarding.submission import submit_documents
from tests.integration.test_operations_stack import _cli, _env, _services  # noqa: F401  (_env is a fixture)

pytestmark = pytest.mark.stack
HOSTILE_KIND = "[/x][bold red]owned[/bold red]"


async def test_show_prints_ticket_text_with_markup_characters_literally(env):
    """A ticket with a markup-laden kind is rejected (unknown-kind, the kind quoted in the reason); ``show``
    prints the reason and the audit line as written and exits 0."""
    services = await _services(env)
    try:
        await submit_documents(
            services, "onboarding", [{"schemaVersion": 1, "kind": HOSTILE_KIND, "ticketId": "RICH1"}]
        )
        report = await drain(services, "onboarding", handle_ticket)
        assert [o.code for o in report.outcomes] == ["unknown-kind"]
    finally:
        await services.close()

    shown = _cli(env, "show", "ticket:RICH1")
    assert shown.returncode == 0, shown.stderr
    assert HOSTILE_KIND in shown.stdout.replace("\n", "")

    missing = _cli(env, "show", "ticket:[/nope]")
    assert missing.returncode == 3 and "MarkupError" not in missing.stderr  # 3: nothing matched
    assert "no work item ticket:[/nope]" in missing.stdout
