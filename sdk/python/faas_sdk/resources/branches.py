"""Branches, as faas has them.

The seed specification describes a BranchManager (create/list/merge/rebase/diff/checkout). The
engine has no branch resource: a branch in faas is a running instance that diverged from a
snapshot — made either by starting an instance from a snapshot, or by live-branching a running
instance (``POST /v1/instances/{id}/branch``, which snapshots it and starts N copies). This module
offers those two, plus listing, on top of the instance routes. ``merge``, ``rebase`` and ``diff``
have no engine support and are deliberately not provided (no client-side imitation).
"""

from __future__ import annotations

from typing import Any, Mapping

from .._bound import BranchResult, Instance, Snapshot
from .._ids import IdRef, id_of, is_snapshot_id
from .._pagination import AsyncPager, SyncPager
from ._resource import AsyncAPIResource, SyncAPIResource


class Branches(SyncAPIResource):
    def create(self, snapshot: IdRef | None = None, **start_options: Any) -> Instance:
        """A new running branch of ``snapshot``; None = a fresh root snapshot of the default image."""
        source: IdRef = snapshot if snapshot is not None else self._client.snapshots.create()
        return self._client.instances.start(source, **start_options)

    def checkout(self, snapshot: IdRef | Snapshot) -> Instance:
        """Same as :meth:`create` from an existing snapshot (the seed's name)."""
        return self.create(snapshot)

    def fork(self, instance: IdRef, count: int = 1, *, metadata: Mapping[str, str] | None = None) -> BranchResult:
        """Live-branches a running instance: memory, processes and files are copied into each child."""
        return self._client.instances.branch(instance, count, metadata=metadata)

    def list(self, parent: IdRef) -> SyncPager[Instance]:
        """Instances started from a snapshot, or branched from an instance."""
        if is_snapshot_id(parent):
            return self._client.instances.list(snapshot_id=id_of(parent))
        return self._client.instances.list(parent_id=id_of(parent))


class AsyncBranches(AsyncAPIResource):
    async def create(self, snapshot: IdRef | None = None, **start_options: Any) -> Instance:
        source: IdRef = snapshot if snapshot is not None else await self._client.snapshots.create()
        return await self._client.instances.start(source, **start_options)

    async def checkout(self, snapshot: IdRef | Snapshot) -> Instance:
        return await self.create(snapshot)

    async def fork(self, instance: IdRef, count: int = 1, *, metadata: Mapping[str, str] | None = None) -> BranchResult:
        return await self._client.instances.branch(instance, count, metadata=metadata)

    def list(self, parent: IdRef) -> AsyncPager[Instance]:
        if is_snapshot_id(parent):
            return self._client.instances.list(snapshot_id=id_of(parent))
        return self._client.instances.list(parent_id=id_of(parent))
