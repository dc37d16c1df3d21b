"""``client.state``: the seed's StateOperations (checkpoint, restore, timeline, rollback), the same
module as the TypeScript SDK's ``client.state``.

A checkpoint is a snapshot of a running instance. The timeline is the chain of checkpoints the
instance's current state descends from, oldest first (``inherited`` marks those that came with
the snapshot it was started from). ``rollback(steps)`` returns the SAME instance in place to the
checkpoint ``steps`` back from the latest, like ``git reset --hard HEAD~(steps-1)``: ``steps=1``
drops every change since the latest checkpoint. See docs/state.md.
"""

from __future__ import annotations

from typing import Any, Mapping

from .._base_client import APIRequest
from .._bound import Instance, Snapshot
from .._ids import IdRef, id_of
from .._managed import AsyncManagedInstance
from ..types import TimelineEntry
from ._resource import AsyncAPIResource, SyncAPIResource


def _timeline_request(instance: IdRef) -> APIRequest:
    return APIRequest("GET", f"/v1/instances/{id_of(instance)}/timeline")


def _entries(data: Any) -> list[TimelineEntry]:
    return [TimelineEntry.model_validate(e) for e in data["data"]]


class State(SyncAPIResource):
    def checkpoint(
        self, instance: IdRef, name: str | None = None, *, metadata: Mapping[str, str] | None = None, ttl: int | None = None
    ) -> Snapshot:
        """Snapshots the running instance (it keeps running); the new head of its timeline."""
        return self._client.instances.snapshot(instance, name=name, metadata=metadata, ttl=ttl)

    def restore(self, snapshot: IdRef, **options: Any) -> Instance:
        """A NEW instance from a checkpoint (or any snapshot): ``instances.start``. To go back in
        place, use :meth:`rollback`."""
        return self._client.instances.start(id_of(snapshot), **options)

    def timeline(self, instance: IdRef) -> list[TimelineEntry]:
        """The instance's checkpoints, oldest first, ``inherited`` marking those from its ancestors."""
        return _entries(self._client._call(_timeline_request(instance)))

    def rollback(self, instance: IdRef, steps: int = 1) -> Instance:
        """Returns the same instance in place to the checkpoint ``steps`` back: 1 (default) = the
        latest checkpoint (drops every change since it), 2 = the one before, …
        :class:`faas_sdk.NoCheckpointError` (409) past the first."""
        return self._client.instances.rollback(instance, steps)


class AsyncState(AsyncAPIResource):
    async def checkpoint(
        self, instance: IdRef, name: str | None = None, *, metadata: Mapping[str, str] | None = None, ttl: int | None = None
    ) -> Snapshot:
        return await self._client.instances.snapshot(instance, name=name, metadata=metadata, ttl=ttl)

    def restore(self, snapshot: IdRef, **options: Any) -> AsyncManagedInstance:
        """``await`` it for the new instance, or ``async with`` it to stop the instance on exit."""
        return self._client.instances.start(id_of(snapshot), **options)

    async def timeline(self, instance: IdRef) -> list[TimelineEntry]:
        return _entries(await self._client._call(_timeline_request(instance)))

    async def rollback(self, instance: IdRef, steps: int = 1) -> Instance:
        return await self._client.instances.rollback(instance, steps)
