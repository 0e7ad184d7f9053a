"""A concurrent writer: rewrites the work-item and guest-ledger rows the product is updating, unchanged.

    python -m tests.chaos.toucher --events DIR --stop-file PATH [--seed N] [--pause SECONDS]

Every rewrite is conditional on the version it read (If-Match), so it never overwrites the product's
data, but it gives the row a new ETag: the product's next conditional write of that row gets 412.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError
from azure.data.tables import TableServiceClient, UpdateMode

from tests.chaos.events import EventLog

# Rows of items in flight: the product is about to write them again.
BUSY_STATUSES = ("running", "queued", "failed", "held", "replayed")


def touch_round(service: TableServiceClient, prefix: str, rng: random.Random, events: EventLog) -> None:
    bucket = f"{rng.randrange(64):02d}"
    work_items = service.get_table_client(f"{prefix}workitems")
    busy = " or ".join(f"status eq '{s}'" for s in BUSY_STATUSES)
    rows = list(work_items.query_entities(f"PartitionKey eq '{bucket}' and ({busy})", results_per_page=50))
    guests = service.get_table_client(f"{prefix}guests")
    ledger = list(guests.query_entities(f"PartitionKey eq '{bucket}'", results_per_page=50))
    picked = [(work_items, e) for e in rows[:5]] + [(guests, e) for e in rng.sample(ledger, min(2, len(ledger)))]
    for table, entity in picked:
        try:
            table.update_entity(
                entity,
                mode=UpdateMode.MERGE,
                etag=entity.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except HttpResponseError as error:
            events.record("touch-lost", status=error.status_code)  # the product wrote it first
            continue
        events.record("etag-touch", table=table.table_name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.toucher")
    parser.add_argument("--events", type=Path, required=True)
    parser.add_argument("--stop-file", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pause", type=float, default=0.5)
    args = parser.parse_args(argv)
    events = EventLog(args.events, "toucher")
    rng = random.Random(args.seed)
    prefix = os.environ.get("LIFECYCLE_TABLE_PREFIX", "lifecycle")
    service = TableServiceClient.from_connection_string(os.environ["LIFECYCLE_TABLES_CONNECTION_STRING"])
    while not args.stop_file.exists():
        try:
            touch_round(service, prefix, rng, events)
        except Exception as error:  # Azurite restarting: try again shortly
            events.record("toucher-error", error=type(error).__name__)
            time.sleep(1.0)
        time.sleep(args.pause)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
