"""The sign-up benchmark itself runs and measures real answers (a broken bench would report nonsense)."""

from __future__ import annotations

from bench.signup_bench import run


async def test_a_small_bench_run_answers_every_request_with_one_key_fetch():
    """A short run answers every request 200, fetches the key set once and reports ordered quantiles."""
    report = await run(60, 20)
    assert report["statuses"] == {200: 60}
    assert report["key_fetches"] == 1
    assert 0 < report["service_p50_ms"] <= report["service_p99_ms"]
    assert report["p50_ms"] <= report["p99_ms"]
