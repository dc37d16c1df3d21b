"""Instances whose lifetime is a ``with`` block.

``ManagedInstance`` is the seed's wrapper for the blocking client: entering gives the instance,
leaving stops it (also when the block raised). :class:`faas_sdk.Instance` itself behaves the same,
so ``with client.instances.start(snap) as inst:`` needs no wrapper.

``AsyncManagedInstance`` is what ``AsyncFaaSClient.instances.start`` returns: awaiting it starts
the instance (``inst = await client.instances.start(snap)``), and ``async with`` starts it on entry
and stops it on exit.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Generator

from ._bound import Instance


class ManagedInstance:
    def __init__(self, instance: Instance) -> None:
        self.instance = instance

    def __enter__(self) -> Instance:
        return self.instance

    def __exit__(self, *exc_info: object) -> None:
        self.instance.stop()


class AsyncManagedInstance:
    def __init__(self, start: Callable[[], Awaitable[Instance]], stop: Callable[[str], Awaitable[Any]]) -> None:
        self._start = start
        self._stop = stop
        self.instance: Instance | None = None

    def __await__(self) -> Generator[Any, None, Instance]:
        return self._start_once().__await__()

    async def _start_once(self) -> Instance:
        if self.instance is None:
            self.instance = await self._start()
        return self.instance

    async def __aenter__(self) -> Instance:
        return await self._start_once()

    async def __aexit__(self, *exc_info: object) -> None:
        if self.instance is not None:
            await self._stop(self.instance.id)
