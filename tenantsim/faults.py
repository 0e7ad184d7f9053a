"""Injected failures: seedable random 429/503/504 answers, connection resets, latency and an outage switch.

``slowRate`` is the share of requests that get the latency (default: all of them); ``slowed`` counts the
requests that were delayed since the faults were last set, so a test can show slow answers happened.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

from tenantsim.errors import bad_request

FAULT_KINDS = ("429", "503", "504", "reset")


@dataclass(slots=True)
class FaultPlan:
    """What to do to one request: nothing, a status to answer with, or a reset; plus added latency."""

    kind: str | None
    delay_seconds: float


@dataclass(slots=True)
class FaultConfig:
    rates: dict[str, float] = field(default_factory=dict)
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    path_pattern: str | None = None
    outage: bool = False
    seed: int = 0
    retry_after_seconds: float = 1.0
    slow_rate: float = 1.0
    slowed: int = 0
    _random: random.Random = field(default_factory=lambda: random.Random(0))
    _pattern: re.Pattern[str] | None = None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> FaultConfig:
        allowed = {"rates", "latencyMs", "jitterMs", "pathPattern", "outage", "seed", "retryAfterSeconds", "slowRate"}
        unknown = set(body) - allowed
        if unknown:
            raise bad_request(f"Unknown fault settings: {sorted(unknown)}.")
        rates = body.get("rates") or {}
        if not isinstance(rates, dict) or any(k not in FAULT_KINDS for k in rates):
            raise bad_request(f"'rates' keys must be among {FAULT_KINDS}.")
        if any(not isinstance(v, int | float) or not 0 <= v <= 1 for v in rates.values()):
            raise bad_request("Every rate must be a probability between 0 and 1.")
        if sum(rates.values()) > 1:
            raise bad_request("The rates must add up to at most 1.")
        slow_rate = body.get("slowRate", 1.0)
        if isinstance(slow_rate, bool) or not isinstance(slow_rate, int | float) or not 0 <= slow_rate <= 1:
            raise bad_request("'slowRate' must be a probability between 0 and 1.")
        config = cls(
            rates={k: float(v) for k, v in rates.items()},
            latency_ms=float(body.get("latencyMs", 0)),
            jitter_ms=float(body.get("jitterMs", 0)),
            path_pattern=body.get("pathPattern"),
            outage=bool(body.get("outage", False)),
            seed=int(body.get("seed", 0)),
            retry_after_seconds=float(body.get("retryAfterSeconds", 1.0)),
            slow_rate=float(slow_rate),
        )
        config._random = random.Random(config.seed)
        if config.path_pattern:
            try:
                config._pattern = re.compile(config.path_pattern)
            except re.error as exc:
                raise bad_request(f"'pathPattern' is not a valid regular expression: {exc}") from exc
        return config

    def as_json(self) -> dict[str, Any]:
        return {
            "rates": dict(self.rates),
            "latencyMs": self.latency_ms,
            "jitterMs": self.jitter_ms,
            "pathPattern": self.path_pattern,
            "outage": self.outage,
            "seed": self.seed,
            "retryAfterSeconds": self.retry_after_seconds,
            "slowRate": self.slow_rate,
            "slowed": self.slowed,
        }

    def plan(self, path: str) -> FaultPlan:
        if self.outage:
            return FaultPlan("outage", 0.0)
        if self._pattern is not None and not self._pattern.search(path):
            return FaultPlan(None, 0.0)
        delay = self.latency_ms + (self._random.uniform(0, self.jitter_ms) if self.jitter_ms else 0.0)
        if self.slow_rate < 1.0 and self._random.random() >= self.slow_rate:
            delay = 0.0
        if delay > 0:
            self.slowed += 1
        draw = self._random.random()
        threshold = 0.0
        for kind in FAULT_KINDS:
            threshold += self.rates.get(kind, 0.0)
            if draw < threshold:
                return FaultPlan(kind, delay / 1000)
        return FaultPlan(None, delay / 1000)
