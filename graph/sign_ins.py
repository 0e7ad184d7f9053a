"""The sign-in logs as evidence of what a report-only Conditional Access policy would have done.

GET /auditLogs/signIns (signin-list.md: AuditLog.Read.All; its known issue adds Directory.Read.All, which this
product is not granted) filtered by time and by the applied policy's id (appliedconditionalaccesspolicy.md:
``id`` supports ``eq``), with ``Prefer: include-unknown-enum-members`` so that the ``reportOnly*`` results are
spelled out instead of ``unknownFutureValue``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote as url_quote
from urllib.parse import urlencode

from msgraph import GraphServiceClient

from graph.odata import quote
from graph.raw import RawGraph

EVOLVABLE = {"Prefer": "include-unknown-enum-members"}
MAX_SIGN_INS = 5000  # evidence, not an export: enough to count, bounded so a busy tenant cannot stall the run


class GraphSignInEvidence:
    def __init__(self, client: GraphServiceClient) -> None:
        self._raw = RawGraph(client)
        self._v1 = self._raw.v1

    async def sign_ins_for_policy(self, policy_id: str, since: datetime) -> list[dict[str, Any]]:
        instant = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        applied = f"appliedConditionalAccessPolicies/any(p:p/id eq {quote(policy_id)})"
        expression = f"createdDateTime ge {instant} and {applied}"
        url = f"{self._v1}/auditLogs/signIns?{urlencode({'$filter': expression}, quote_via=url_quote)}"
        return await self._raw.collection(url, headers=EVOLVABLE, limit=MAX_SIGN_INS)
