"""The micro-batcher on its own: windows, batch sizes, the bounded queue, deadlines, errors."""

from __future__ import annotations

import asyncio
import threading

import pytest

from multimodal_cat.serving.batcher import DeadlineError, MicroBatcher, QueueFullError


def _run(coroutine):
    return asyncio.run(coroutine)


class _Recorder:
    def __init__(self, gate: threading.Event | None = None, fail: bool = False):
        self.batches: list[list[int]] = []
        self.gate, self.fail = gate, fail

    def __call__(self, items):
        self.batches.append(list(items))
        if self.gate is not None:
            self.gate.wait(10)
        if self.fail:
            raise RuntimeError("model failed")
        return [x * 10 for x in items]


async def _started(process, **options) -> MicroBatcher:
    batcher = MicroBatcher(process, **options)
    await batcher.start()
    return batcher


def test_products_arriving_within_the_window_share_a_batch():
    async def main():
        process = _Recorder()
        batcher = await _started(process, max_batch=16, window_ms=200)
        results = await asyncio.gather(*(batcher.submit([n]) for n in range(5)))
        await batcher.stop()
        return process.batches, results

    batches, results = _run(main())
    assert batches == [[0, 1, 2, 3, 4]]
    assert results == [[0], [10], [20], [30], [40]]


def test_a_batch_never_exceeds_max_batch():
    async def main():
        process = _Recorder()
        batcher = await _started(process, max_batch=3, window_ms=100)
        await asyncio.gather(*(batcher.submit([n]) for n in range(7)))
        await batcher.stop()
        return process.batches

    assert [len(b) for b in _run(main())] == [3, 3, 1]


def test_a_lone_request_goes_alone_after_the_window():
    async def main():
        process = _Recorder()
        batcher = await _started(process, max_batch=64, window_ms=1)
        first = await batcher.submit([1])
        second = await batcher.submit([2])
        await batcher.stop()
        return process.batches, first, second

    batches, first, second = _run(main())
    assert batches == [[1], [2]] and first == [10] and second == [20]


def test_a_lone_item_with_nobody_on_the_way_does_not_wait_out_the_window():
    """An hour-long window: with no caller arriving, the batch goes at once (before the
    fix the first item always waited the whole window, and this test hung)."""

    async def main():
        process = _Recorder()
        batcher = await _started(process, max_batch=64, window_ms=3_600_000, arriving=lambda: 0)
        answer = await asyncio.wait_for(batcher.submit([1]), 30)
        await batcher.stop()
        return process.batches, answer

    assert _run(main()) == ([[1]], [10])


def test_the_window_waits_for_callers_on_their_way_and_takes_what_is_queued():
    async def main():
        process = _Recorder()
        on_the_way = [1]
        batcher = await _started(process, max_batch=64, window_ms=3_600_000, arriving=lambda: on_the_way[0])
        first = asyncio.ensure_future(batcher.submit([1]))
        await asyncio.sleep(0.05)  # the batch waits: one caller is still on its way
        assert process.batches == []
        on_the_way[0] = 0
        second = asyncio.ensure_future(batcher.submit([2, 3]))  # it arrives: nobody else is coming
        answers = await asyncio.wait_for(asyncio.gather(first, second), 30)
        await batcher.stop()
        return process.batches, answers, batcher.callers

    batches, answers, callers = _run(main())
    assert batches == [[1, 2, 3]] and answers == [[10], [20, 30]] and callers == 0


def test_a_full_queue_refuses_at_once_and_recovers():
    async def main():
        gate = threading.Event()
        process = _Recorder(gate)
        batcher = await _started(process, max_batch=1, window_ms=0, max_queue=2)
        running = asyncio.ensure_future(batcher.submit([1]))
        while not process.batches:  # item 1 is in the model
            await asyncio.sleep(0.001)
        queued = asyncio.ensure_future(batcher.submit([2, 3]))  # fills the queue
        await asyncio.sleep(0)
        with pytest.raises(QueueFullError, match="queue is full"):
            await batcher.submit([4])
        gate.set()
        done = await asyncio.gather(running, queued)
        after = await batcher.submit([5])
        await batcher.stop()
        return done, after

    done, after = _run(main())
    assert done == [[10], [20, 30]] and after == [50]


def test_items_past_their_deadline_never_reach_the_model():
    async def main():
        gate = threading.Event()
        process = _Recorder(gate)
        batcher = await _started(process, max_batch=1, window_ms=0)
        first = asyncio.ensure_future(batcher.submit([1]))
        while not process.batches:
            await asyncio.sleep(0.001)
        late = asyncio.ensure_future(batcher.submit([2], timeout=0.01))
        await asyncio.sleep(0.05)
        gate.set()
        with pytest.raises(DeadlineError):
            await late
        await first
        await batcher.stop()
        return process.batches

    assert _run(main()) == [[1]]


def test_a_failing_batch_fails_its_callers_and_the_loop_goes_on():
    async def main():
        process = _Recorder(fail=True)
        batcher = await _started(process, max_batch=4, window_ms=50)
        answers = await asyncio.gather(batcher.submit([1]), batcher.submit([2]), return_exceptions=True)
        process.fail = False
        after = await batcher.submit([3])
        await batcher.stop()
        return answers, after

    answers, after = _run(main())
    assert all(isinstance(a, RuntimeError) for a in answers) and after == [30]


def test_stop_finishes_queued_items_and_then_refuses():
    async def main():
        process = _Recorder()
        batcher = await _started(process, max_batch=2, window_ms=0)
        pending = [asyncio.ensure_future(batcher.submit([n])) for n in range(5)]
        await asyncio.sleep(0)
        await batcher.stop()
        with pytest.raises(QueueFullError, match="shutting down"):
            await batcher.submit([9])
        return await asyncio.gather(*pending)

    assert _run(main()) == [[0], [10], [20], [30], [40]]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="max_batch >= 1"):
        MicroBatcher(lambda xs: xs, max_batch=0)
