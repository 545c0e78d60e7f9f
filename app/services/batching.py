"""MicroBatcher: gathers concurrent requests' sentences into one model call.

Each request puts ``(sentences, future)`` on a bounded asyncio queue. One worker takes the
first waiting request, then keeps taking more until ``max_batch_size`` sentences are gathered
or ``max_wait_ms`` has passed, runs one ``encode`` call in a single-thread executor (one model
call at a time, the event loop stays free), and resolves each request's future with its rows.
A full queue refuses at once (``OverloadedError``, HTTP 429) instead of queueing unboundedly.
(After infinity's BatchHandler and TEI's queue.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from app.core.errors import NotReadyError, OverloadedError
from app.core.types import Embeddings
from app.services.metrics import Metrics

T = TypeVar("T")


@dataclass
class _Request:
    sentences: Sequence[str]
    future: asyncio.Future[Embeddings]


class MicroBatcher:
    """Dynamic batching in front of an ``encode`` function.

    Args:
        encode: Blocking function from n sentences to float32 (n, d) vectors.
        max_batch_size: Sentences gathered per call (a larger single request still goes whole).
        max_wait_ms: Longest wait for more requests after the first, in milliseconds.
        max_queue_size: Requests that may wait; beyond, ``encode`` raises ``OverloadedError``.
        metrics: Where batch sizes and queue depth are recorded.
    """

    def __init__(
        self,
        encode: Callable[[list[str]], Embeddings],
        *,
        max_batch_size: int = 64,
        max_wait_ms: float = 1.0,
        max_queue_size: int = 1024,
        metrics: Metrics | None = None,
    ) -> None:
        self._encode = encode
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000.0
        self._queue: asyncio.Queue[_Request] = asyncio.Queue(maxsize=max_queue_size)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sentsim-model")
        self._worker: asyncio.Task[None] | None = None
        self._metrics = metrics

    @property
    def running(self) -> bool:
        """Whether the worker is started."""
        return self._worker is not None and not self._worker.done()

    def start(self) -> None:
        """Start the worker on the running event loop."""
        if not self.running:
            self._worker = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Finish the requests already queued, then stop the worker and its thread."""
        if self._worker is not None:
            await self._queue.join()
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        self._executor.shutdown(wait=True)

    async def encode(self, sentences: Sequence[str]) -> Embeddings:
        """Encode sentences together with other requests' sentences.

        Returns:
            float32 (n, d) vectors in input order (as the wrapped ``encode`` returns them).

        Raises:
            OverloadedError: The queue is full.
            NotReadyError: The batcher is not running.
        """
        if not self.running:
            raise NotReadyError("the model is not loaded yet")
        future: asyncio.Future[Embeddings] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(_Request(sentences, future))
        except asyncio.QueueFull:
            raise OverloadedError(
                f"the model queue is full ({self._queue.maxsize} requests waiting); retry later"
            ) from None
        self._gauge()
        return await future

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run other model work (e.g. ``encode_tokens``) on the model thread, between batches,
        so the model is never called twice at once.

        Raises:
            NotReadyError: The batcher is not running.
        """
        if not self.running:
            raise NotReadyError("the model is not loaded yet")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _gauge(self) -> None:
        if self._metrics is not None:
            self._metrics.queue_depth.set(self._queue.qsize())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            size = len(batch[0].sentences)
            deadline = loop.time() + self.max_wait_s
            while size < self.max_batch_size:
                try:
                    if self._queue.empty():
                        timeout = deadline - loop.time()
                        if timeout <= 0:
                            break
                        request = await asyncio.wait_for(self._queue.get(), timeout)
                    else:
                        request = self._queue.get_nowait()
                except TimeoutError:
                    break
                batch.append(request)
                size += len(request.sentences)
            self._gauge()
            await self._process(loop, batch)

    async def _process(self, loop: asyncio.AbstractEventLoop, batch: list[_Request]) -> None:
        try:
            await self._encode_batch(loop, batch)
        finally:
            for _ in batch:
                self._queue.task_done()

    async def _encode_batch(self, loop: asyncio.AbstractEventLoop, batch: list[_Request]) -> None:
        """Encode the batch in one call; if it fails, encode each request alone, so that a
        request the model cannot take fails by itself and never its batch neighbours."""
        sentences = [s for request in batch for s in request.sentences]
        try:
            vectors = await loop.run_in_executor(self._executor, self._encode, sentences)
        except Exception as exc:  # noqa: BLE001 - handed to the request(s) it belongs to
            if len(batch) > 1:
                for request in batch:
                    await self._encode_batch(loop, [request])
                return
            if not batch[0].future.done():
                batch[0].future.set_exception(exc)
            return
        if self._metrics is not None:
            self._metrics.batch_size.observe(len(sentences))
        offsets = np.cumsum([0] + [len(r.sentences) for r in batch])
        for request, start, end in zip(batch, offsets[:-1], offsets[1:], strict=True):
            if not request.future.done():
                request.future.set_result(vectors[start:end])
