"""lifecycle.kept.KeptAnswers: one read for callers asking at once, kept for its time, never a failure kept."""

from __future__ import annotations

import asyncio

import pytest

from lifecycle.kept import KeptAnswers


class _Reads:
    def __init__(self, answer: object = "answer", fail: bool = False) -> None:
        self.count, self.answer, self.fail = 0, answer, fail
        self.release = asyncio.Event()

    async def __call__(self) -> object:
        self.count += 1
        await self.release.wait()
        if self.fail:
            raise RuntimeError("read failed")
        return self.answer


async def test_a_caller_cancelled_while_waiting_does_not_cancel_the_others_answer():
    kept: KeptAnswers[str, object] = KeptAnswers(60.0)
    read = _Reads()
    first = asyncio.ensure_future(kept.get("k", read))
    second = asyncio.ensure_future(kept.get("k", read))
    await asyncio.sleep(0)
    first.cancel()
    read.release.set()
    assert await second == "answer" and read.count == 1
    assert await kept.get("k", read) == "answer" and read.count == 1


async def test_a_failed_read_reaches_every_waiter_and_is_not_kept():
    kept: KeptAnswers[str, object] = KeptAnswers(60.0)
    failing = _Reads(fail=True)
    waiters = [asyncio.ensure_future(kept.get("k", failing)) for _ in range(3)]
    await asyncio.sleep(0)
    failing.release.set()
    for waiter in waiters:
        with pytest.raises(RuntimeError):
            await waiter
    assert failing.count == 1
    succeeding = _Reads()
    succeeding.release.set()
    assert await kept.get("k", succeeding) == "answer" and succeeding.count == 1


async def test_an_answer_keep_refuses_is_read_again_and_a_kept_one_ages_out():
    now = [0.0]
    kept: KeptAnswers[str, object] = KeptAnswers(10.0, keep=lambda a: a == "member", clock=lambda: now[0])
    guest, member = _Reads("guest"), _Reads("member")
    guest.release.set()
    member.release.set()
    assert [await kept.get("g", guest), await kept.get("g", guest)] == ["guest", "guest"] and guest.count == 2
    await kept.get("m", member)
    now[0] = 9.9
    await kept.get("m", member)
    assert member.count == 1
    now[0] = 10.1
    await kept.get("m", member)
    assert member.count == 2
