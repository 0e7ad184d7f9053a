"""The harness's own fault counters: one JSON line per injected or observed event, one file per process.

A worker that kills itself writes its line first, so the count survives the SIGKILL (the line is in the
kernel's page cache once ``write`` returns; nothing needs to reach the disk).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path


class EventLog:
    def __init__(self, directory: Path, name: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{name}-{os.getpid()}.jsonl"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def record(self, kind: str, **detail: object) -> None:
        line = json.dumps({"kind": kind, "at": time.time(), "pid": os.getpid(), **detail}, default=str) + "\n"
        os.write(self._fd, line.encode())


def read_events(directory: Path) -> list[dict]:
    events = []
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                try:
                    events.append(json.loads(line))
                except ValueError:
                    continue  # a line cut short by a kill mid-write
    return events


def count_events(directory: Path) -> Counter[str]:
    return Counter(event["kind"] for event in read_events(directory))
