"""Branches, as faas has them.

The seed specification describes a BranchManager (create/list/merge/rebase/diff/checkout). The
engine has no branch resource: a branch in faas is a running instance that diverged from a
snapshot — made either by starting an instance from a snapshot, or by live-branching a running
instance (``POST /v1/instances/{id}/branch``, which snapshots it and starts N copies). This module
offers those two, plus listing, on top of the instance routes. ``merge``, ``rebase`` and ``diff``
have no engine support and are deliberately not provided (no client-side imitation).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from .._bound import BranchResult, Instance, Snapshot
from .._ids import IdRef, id_of, is_snapshot_id
from .._pagination import AsyncPager, SyncPager
from ..types.diff import BranchData, BranchDiff
from ._diff import diff_request, merge_request, rebase_request
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

    def diff(self, branch: IdRef, target: IdRef, *, text_diffs: Optional[bool] = None) -> BranchDiff:
        """What changed in the files from the branch's head to ``target`` (a branch's head, or a snapshot)."""
        return BranchDiff.model_validate(self._client._call(diff_request("branches", branch, target, text_diffs)))

    def merge(
        self,
        branches: Sequence[IdRef],
        *,
        strategy: Any = None,
        message: Optional[str] = None,
        metadata: Optional[Mapping[str, str]] = None,
    ) -> Snapshot:
        """Merges the branches' heads onto the first branch's head (its memory and processes) and
        moves that head to the result. Overlapping changes raise MergeConflictError unless ``strategy`` resolves them."""
        data = self._client._call(merge_request("branches", branches, strategy, None, message, metadata))
        return Snapshot.model_validate(data).bind(self._client)

    def rebase(self, branch: IdRef, target: IdRef, *, strategy: Any = None) -> BranchData:
        """Replays the branch's changes onto ``target``'s head; moves its head and divergence point.
        In ``strategy``, ``ours`` is the target and ``theirs`` the branch (git's convention)."""
        return BranchData.model_validate(self._client._call(rebase_request(branch, target, strategy)))


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

    async def diff(self, branch: IdRef, target: IdRef, *, text_diffs: Optional[bool] = None) -> BranchDiff:
        return BranchDiff.model_validate(await self._client._call(diff_request("branches", branch, target, text_diffs)))

    async def merge(
        self,
        branches: Sequence[IdRef],
        *,
        strategy: Any = None,
        message: Optional[str] = None,
        metadata: Optional[Mapping[str, str]] = None,
    ) -> Snapshot:
        data = await self._client._call(merge_request("branches", branches, strategy, None, message, metadata))
        return Snapshot.model_validate(data).bind(self._client)

    async def rebase(self, branch: IdRef, target: IdRef, *, strategy: Any = None) -> BranchData:
        return BranchData.model_validate(await self._client._call(rebase_request(branch, target, strategy)))
