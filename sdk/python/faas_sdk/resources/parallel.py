"""Fan work out over live branches of one running instance — the same four operations, signatures
and errors as the TypeScript SDK (docs/sdk-behaviour.md).

* ``map(items, fn, source=)`` — one child per item (``fn(item, child)``), at most ``concurrency``
  children alive at once; each batch is one ``branch`` call, and its children are stopped (or with
  ``cleanup="delete"`` deleted) after.
* ``all(source, fns)`` — one child per function, all at once; every child stopped after.
* ``race(source, fns)`` — one child per function; the first to *succeed* wins, the losers'
  children are stopped at once (which ends their work); the winner's child keeps running and is
  returned — stop it when you are done. Only if every function fails: :class:`ParallelError`
  carrying each function's error in order.
* ``pool(size, tasks)`` — the primitive underneath: run zero-argument tasks with at most ``size``
  in flight, results in input order; after the first failure nothing new starts and it is raised.

Blocking: threads. Async: tasks on the running loop.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Awaitable, Callable, Generic, Literal, Mapping, Sequence, TypeVar

from .._bound import Instance
from .._exceptions import ParallelError
from .._ids import IdRef
from ._resource import AsyncAPIResource, SyncAPIResource

T = TypeVar("T")
R = TypeVar("R")
DEFAULT_CONCURRENCY = 4
Cleanup = Literal["stop", "delete"]


@dataclass
class RaceResult(Generic[R]):
    value: R
    #: Index of the winning function.
    index: int
    #: The winner's child instance, still running.
    instance: Instance


def _batches(items: Sequence[T], size: int) -> list[Sequence[T]]:
    size = max(1, size)
    return [items[start : start + size] for start in range(0, len(items), size)]


class Parallel(SyncAPIResource):
    def pool(self, size: int, tasks: Sequence[Callable[[], R]]) -> list[R]:
        if not tasks:
            return []
        executor = ThreadPoolExecutor(max_workers=max(1, min(size, len(tasks))), thread_name_prefix="faas-pool")
        try:
            futures = [executor.submit(task) for task in tasks]
            wait(futures, return_when="FIRST_EXCEPTION")
            for future in futures:
                if future.done() and future.exception() is not None:
                    for other in futures:
                        other.cancel()
                    raise future.exception()  # type: ignore[misc]
            return [future.result() for future in futures]
        finally:
            executor.shutdown(wait=True, cancel_futures=True)

    def _stop_all(self, instances: Sequence[Instance], cleanup: Cleanup = "stop") -> None:
        def stop(instance: Instance) -> Callable[[], None]:
            return lambda: self._stop_quietly(instance, cleanup)

        self.pool(len(instances), [stop(i) for i in instances])

    def _stop_quietly(self, instance: Instance, cleanup: Cleanup) -> None:
        try:
            if cleanup == "delete":
                self._client.instances.delete(instance.id)
            else:
                self._client.instances.stop(instance.id)
        except Exception:  # cleanup must not hide the work's own result or error
            pass

    def map(
        self,
        items: Sequence[T],
        fn: Callable[[T, Instance], R],
        *,
        source: IdRef,
        concurrency: int = DEFAULT_CONCURRENCY,
        cleanup: Cleanup = "stop",
        metadata: Mapping[str, str] | None = None,
    ) -> list[R]:
        results: list[R] = []
        for batch in _batches(items, concurrency):
            children = self._client.instances.branch(source, len(batch), metadata=metadata).instances
            try:
                results.extend(self.pool(len(batch), [_bind2(fn, item, child) for item, child in zip(batch, children)]))
            finally:
                self._stop_all(children, cleanup)
        return results

    def all(self, source: IdRef, fns: Sequence[Callable[[Instance], R]]) -> list[R]:
        if not fns:
            return []
        children = self._client.instances.branch(source, len(fns)).instances
        try:
            return self.pool(len(fns), [_bind1(fn, child) for fn, child in zip(fns, children)])
        finally:
            self._stop_all(children)

    def race(self, source: IdRef, fns: Sequence[Callable[[Instance], R]]) -> RaceResult[R]:
        if not fns:
            raise TypeError("parallel.race needs at least one function")
        children = self._client.instances.branch(source, len(fns)).instances
        executor = ThreadPoolExecutor(max_workers=len(fns), thread_name_prefix="faas-race")
        futures: dict[Future[R], int] = {executor.submit(fn, child): i for i, (fn, child) in enumerate(zip(fns, children))}
        pending = set(futures)
        errors: dict[int, BaseException] = {}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    error = future.exception()
                    if error is None:
                        index = futures[future]
                        self._stop_all([c for i, c in enumerate(children) if i != index])
                        return RaceResult(future.result(), index, children[index])
                    errors[futures[future]] = error
            self._stop_all(children)
            raise _all_failed(errors)
        finally:
            # Losers fail once their instance stops; nobody needs to wait for them.
            executor.shutdown(wait=False, cancel_futures=True)


class AsyncParallel(AsyncAPIResource):
    async def pool(self, size: int, tasks: Sequence[Callable[[], Awaitable[R]]]) -> list[R]:
        semaphore = asyncio.Semaphore(max(1, size))

        async def bounded(task: Callable[[], Awaitable[R]]) -> R:
            async with semaphore:
                return await task()

        running = [asyncio.ensure_future(bounded(task)) for task in tasks]
        try:
            return list(await asyncio.gather(*running))
        finally:
            for future in running:
                future.cancel()

    async def _stop_all(self, instances: Sequence[Instance], cleanup: Cleanup = "stop") -> None:
        end = self._client.instances.delete if cleanup == "delete" else self._client.instances.stop
        await asyncio.gather(*(end(i.id) for i in instances), return_exceptions=True)

    async def map(
        self,
        items: Sequence[T],
        fn: Callable[[T, Instance], Awaitable[R]],
        *,
        source: IdRef,
        concurrency: int = DEFAULT_CONCURRENCY,
        cleanup: Cleanup = "stop",
        metadata: Mapping[str, str] | None = None,
    ) -> list[R]:
        results: list[R] = []
        for batch in _batches(items, concurrency):
            children = (await self._client.instances.branch(source, len(batch), metadata=metadata)).instances
            try:
                results.extend(await asyncio.gather(*(fn(item, child) for item, child in zip(batch, children))))
            finally:
                await self._stop_all(children, cleanup)
        return results

    async def all(self, source: IdRef, fns: Sequence[Callable[[Instance], Awaitable[R]]]) -> list[R]:
        if not fns:
            return []
        children = (await self._client.instances.branch(source, len(fns))).instances
        try:
            return list(await asyncio.gather(*(fn(child) for fn, child in zip(fns, children))))
        finally:
            await self._stop_all(children)

    async def race(self, source: IdRef, fns: Sequence[Callable[[Instance], Awaitable[R]]]) -> RaceResult[R]:
        if not fns:
            raise TypeError("parallel.race needs at least one function")
        children = (await self._client.instances.branch(source, len(fns))).instances
        tasks = {asyncio.ensure_future(fn(child)): i for i, (fn, child) in enumerate(zip(fns, children))}
        pending = set(tasks)
        errors: dict[int, BaseException] = {}
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    error = task.exception()
                    if error is None:
                        index = tasks[task]
                        for loser in pending:
                            loser.cancel()
                        await self._stop_all([c for i, c in enumerate(children) if i != index])
                        return RaceResult(task.result(), index, children[index])
                    errors[tasks[task]] = error
            await self._stop_all(children)
            raise _all_failed(errors)
        finally:
            for task in pending:
                task.cancel()


def _bind1(fn: Callable[[Instance], R], child: Instance) -> Callable[[], R]:
    return lambda: fn(child)


def _bind2(fn: Callable[[T, Instance], R], item: T, child: Instance) -> Callable[[], R]:
    return lambda: fn(item, child)


def _all_failed(errors: dict[int, BaseException]) -> ParallelError:
    ordered = [errors[i] for i in sorted(errors)]
    error = ParallelError(f"every one of the {len(ordered)} race tasks failed", ordered)
    error.__cause__ = ordered[-1] if ordered else None
    return error
