"""MicroBatcher: gathering, order, backpressure, errors."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from app.core.errors import NotReadyError, OverloadedError
from app.services.batching import MicroBatcher


class RecordingEncoder:
    """A test double: returns each sentence's length as a 1-d vector and records calls."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[list[str]] = []
        self.delay = delay
        self.release = threading.Event()
        self.release.set()

    def __call__(self, sentences: list[str]) -> np.ndarray:
        self.release.wait(5)
        self.calls.append(list(sentences))
        return np.array([[len(s)] for s in sentences], dtype=np.float32)


def test_concurrent_requests_share_model_calls_and_keep_their_rows() -> None:
    encoder = RecordingEncoder()

    async def main() -> list[np.ndarray]:
        batcher = MicroBatcher(encoder, max_batch_size=64, max_wait_ms=50)
        batcher.start()
        requests = [["x" * (i + 1)] * 2 for i in range(20)]
        out = await asyncio.gather(*(batcher.encode(r) for r in requests))
        await batcher.stop()
        return out

    results = asyncio.run(main())
    for i, rows in enumerate(results):
        np.testing.assert_array_equal(rows, [[i + 1], [i + 1]])
    assert len(encoder.calls) < 20  # gathered, not one call per request
    assert sum(len(c) for c in encoder.calls) == 40


def test_batches_stop_at_max_batch_size() -> None:
    encoder = RecordingEncoder()

    async def main() -> None:
        batcher = MicroBatcher(encoder, max_batch_size=4, max_wait_ms=50)
        batcher.start()
        await asyncio.gather(*(batcher.encode(["a"]) for _ in range(12)))
        await batcher.stop()

    asyncio.run(main())
    assert max(len(c) for c in encoder.calls) <= 4


def test_full_queue_refuses_at_once() -> None:
    encoder = RecordingEncoder()
    encoder.release.clear()  # the model is busy

    async def main() -> None:
        batcher = MicroBatcher(encoder, max_batch_size=1, max_wait_ms=0, max_queue_size=2)
        batcher.start()
        first = asyncio.ensure_future(batcher.encode(["a"]))
        await asyncio.sleep(0.05)  # the worker takes it and blocks in the model
        waiting = [asyncio.ensure_future(batcher.encode(["b"])) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(OverloadedError, match="queue is full"):
            await batcher.encode(["c"])
        encoder.release.set()
        await asyncio.gather(first, *waiting)
        await batcher.stop()

    asyncio.run(main())


def test_model_errors_reach_every_waiting_request() -> None:
    def broken(_: list[str]) -> np.ndarray:
        raise RuntimeError("model failed")

    async def main() -> None:
        batcher = MicroBatcher(broken, max_wait_ms=20)
        batcher.start()
        outcomes = await asyncio.gather(
            batcher.encode(["a"]), batcher.encode(["b"]), return_exceptions=True
        )
        assert all(isinstance(o, RuntimeError) for o in outcomes)
        await batcher.stop()

    asyncio.run(main())


def test_a_request_the_model_refuses_fails_alone() -> None:
    """Issue 9 row 2: a lone surrogate made the tokenizer fail the whole micro-batch."""
    encoder = RecordingEncoder()

    def picky(sentences: list[str]) -> np.ndarray:
        if any("\ud800" in s for s in sentences):
            raise TypeError("the tokenizer cannot take this text")
        return encoder(sentences)

    async def main() -> list[object]:
        batcher = MicroBatcher(picky, max_wait_ms=50)
        batcher.start()
        requests = [["fine"] * 2, ["abc\ud800def"], ["also fine"], ["x", "yy"]]
        outcomes = await asyncio.gather(
            *(batcher.encode(r) for r in requests), return_exceptions=True
        )
        await batcher.stop()
        return outcomes

    ok, bad, also_ok, pair = asyncio.run(main())
    assert isinstance(bad, TypeError)
    np.testing.assert_array_equal(ok, [[4], [4]])
    np.testing.assert_array_equal(also_ok, [[9]])
    np.testing.assert_array_equal(pair, [[1], [2]])
    assert encoder.calls == [["fine", "fine"], ["also fine"], ["x", "yy"]]  # retried alone


def test_not_started_is_not_ready() -> None:
    async def main() -> None:
        with pytest.raises(NotReadyError):
            await MicroBatcher(RecordingEncoder()).encode(["a"])

    asyncio.run(main())


def test_run_executes_other_model_work_on_the_model_thread() -> None:
    async def main() -> None:
        batcher = MicroBatcher(RecordingEncoder())
        batcher.start()
        name = await batcher.run(lambda: threading.current_thread().name)
        assert name.startswith("sentsim-model")
        await batcher.stop()

    asyncio.run(main())


def test_other_model_work_waits_in_the_same_bounded_queue() -> None:
    """Token vectors for WMD / WRD used to bypass the queue: never a 429, however many."""
    encoder = RecordingEncoder()
    encoder.release.clear()  # the model is busy

    async def main() -> None:
        batcher = MicroBatcher(encoder, max_batch_size=1, max_queue_size=2)
        batcher.start()
        first = asyncio.ensure_future(batcher.encode(["a"]))
        await asyncio.sleep(0.05)  # the worker takes it and blocks in the model
        waiting = [asyncio.ensure_future(batcher.run(len, "xyz")) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(OverloadedError, match="queue is full"):
            await batcher.run(len, "xyz")
        encoder.release.set()
        assert await asyncio.gather(*waiting) == [3, 3]
        await first
        await batcher.stop()

    asyncio.run(main())


def test_a_call_met_while_gathering_runs_alone_right_after_the_batch() -> None:
    order: list[str] = []
    encoder = RecordingEncoder()
    encoder.release.clear()

    def record(sentences: list[str]) -> np.ndarray:
        rows = encoder(sentences)
        order.append("batch:" + ",".join(sentences))
        return rows

    async def main() -> None:
        batcher = MicroBatcher(record, max_batch_size=64, max_wait_ms=0)
        batcher.start()
        busy = asyncio.ensure_future(batcher.encode(["0"]))
        await asyncio.sleep(0.05)  # the model holds "0"; the rest queue up behind it
        jobs = [
            asyncio.ensure_future(batcher.encode(["a"])),
            asyncio.ensure_future(batcher.run(lambda: order.append("call"))),
            asyncio.ensure_future(batcher.encode(["b"])),
        ]
        await asyncio.sleep(0)
        encoder.release.set()
        await asyncio.gather(busy, *jobs)
        await batcher.stop()

    asyncio.run(main())
    assert order == ["batch:0", "batch:a", "call", "batch:b"]


def test_encode_parts_splits_a_large_request_and_keeps_its_order() -> None:
    encoder = RecordingEncoder()

    async def main() -> list[np.ndarray]:
        batcher = MicroBatcher(encoder, max_batch_size=4)
        batcher.start()
        parts = await batcher.encode_parts(["x" * (i + 1) for i in range(10)])
        await batcher.stop()
        return parts

    parts = asyncio.run(main())
    assert [len(p) for p in parts] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate(parts)[:, 0], np.arange(1, 11))
    assert max(len(c) for c in encoder.calls) <= 4
