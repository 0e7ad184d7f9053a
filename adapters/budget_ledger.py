"""The BudgetLedger in Table Storage: table ``{prefix}graphbudget``, one partition per budget scope
(tenant, app, class), one row per process. Each heartbeat replaces the row, so its ETag changes; readers
take the ETag as the row's version (graph.budget_lease)."""

from __future__ import annotations

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode

from adapters.table_keys import encode_key
from adapters.tables import SingleTableStore
from graph.budget_ledger import LedgerRow


class TableBudgetLedger(SingleTableStore):
    TABLE = "graphbudget"

    async def beat(self, scope: str, member: str, spent: float, waiting: float = 0.0) -> None:
        entity = {
            "PartitionKey": encode_key(scope),
            "RowKey": encode_key(member),
            "scope": scope,
            "member": member,
            "spent": float(spent),
            "waiting": float(waiting),
        }
        await self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)

    async def rows(self, scope: str) -> list[LedgerRow]:
        entities = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": encode_key(scope)})
        return [
            LedgerRow(
                str(entity["member"]),
                str(entity.metadata["etag"]),
                float(entity.get("spent", 0.0)),
                float(entity.get("waiting", 0.0)),
            )
            async for entity in entities
        ]

    async def remove(self, scope: str, member: str) -> None:
        try:
            await self._table.delete_entity(encode_key(scope), encode_key(member))
        except ResourceNotFoundError:
            return
