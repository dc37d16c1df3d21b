"""Branches: named lines of snapshots, in git's sense (the same module as the TypeScript SDK's).

A :class:`~faas_sdk.Branch` has a ``head`` (its newest snapshot), a ``divergence_point`` (where it
left its parent) and, once checked out, a live instance. ``checkout`` gives that instance (restored
from ``head`` when there is none); ``commit`` checkpoints it and moves ``head`` (so does any
snapshot the branch's owner takes of it). Deleting a branch keeps its snapshots and its instance.
Live forking of a running instance stays ``instances.branch`` (``fork`` here), which can name the
branches it makes.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from .._base_client import APIRequest, drop_none, metadata_params
from .._bound import Branch, BranchResult, Instance, Snapshot
from .._ids import IdRef, id_of
from .._pagination import AsyncPager, SyncPager
from ..types.diff import BranchDiff
from ._diff import diff_request, merge_request, rebase_request
from ._resource import AsyncAPIResource, SyncAPIResource


def _create_request(snapshot: IdRef, name: str | None, metadata: Mapping[str, str] | None) -> APIRequest:
    body = drop_none({"snapshotId": id_of(snapshot), "name": name, "metadata": dict(metadata) if metadata is not None else None})
    return APIRequest("POST", "/v1/branches", json=body)


def _list_request(
    parent_id: IdRef | None, name: str | None, metadata: Mapping[str, str] | None, page_size: int | None
) -> APIRequest:
    params = drop_none({"limit": page_size, "parentId": id_of(parent_id) if parent_id is not None else None, "name": name})
    return APIRequest("GET", "/v1/branches", params={**params, **metadata_params(metadata)})


def _delete_request(branch: IdRef, force: bool) -> APIRequest:
    return APIRequest("DELETE", f"/v1/branches/{id_of(branch)}", params={"force": True} if force else None)


def _commit_request(branch: IdRef, message: str | None, metadata: Mapping[str, str] | None) -> APIRequest:
    body = drop_none({"message": message, "metadata": dict(metadata) if metadata is not None else None})
    return APIRequest("POST", f"/v1/branches/{id_of(branch)}/commit", json=body)


def _checkout_request(branch: IdRef) -> APIRequest:
    return APIRequest("POST", f"/v1/branches/{id_of(branch)}/checkout")


class Branches(SyncAPIResource):
    def _parse(self, data: Any) -> Branch:
        return Branch.model_validate(data).bind(self._client)

    def create(self, snapshot: IdRef, *, name: str | None = None, metadata: Mapping[str, str] | None = None) -> Branch:
        """A branch at ``snapshot`` (its divergence point and head); nothing is started.
        ``name`` is unique among the key's branches (the branch's id when omitted)."""
        return self._parse(self._client._call(_create_request(snapshot, name, metadata)))

    def get(self, branch: IdRef) -> Branch:
        return self._parse(self._client._call(APIRequest("GET", f"/v1/branches/{id_of(branch)}")))

    def list(
        self,
        parent_id: IdRef | None = None,
        *,
        name: str | None = None,
        metadata: Mapping[str, str] | None = None,
        page_size: int | None = None,
    ) -> SyncPager[Branch]:
        """Branches, newest first; ``list(parent)`` (the seed's form) lists a branch's children."""
        return SyncPager(self._client, _list_request(parent_id, name, metadata, page_size), self._parse)

    def delete(self, branch: IdRef, *, force: bool = False) -> None:
        """Deletes the record only: its snapshots and its checked-out instance stay."""
        self._client._call(_delete_request(branch, force))

    def checkout(self, branch: IdRef) -> Instance:
        """The branch's live instance at its head: the checked-out one if live, else restored."""
        return Instance.model_validate(self._client._call(_checkout_request(branch))).bind(self._client)

    def commit(self, branch: IdRef, message: str | None = None, *, metadata: Mapping[str, str] | None = None) -> Snapshot:
        """Checkpoints the branch's checked-out instance into a new snapshot and moves the head to it."""
        data = self._client._call(_commit_request(branch, message, metadata))
        return Snapshot.model_validate(data).bind(self._client)

    def fork(
        self, instance: IdRef, count: int = 1, *, names: Sequence[str] | None = None, metadata: Mapping[str, str] | None = None
    ) -> BranchResult:
        """Live-branches a running instance (= ``instances.branch``); with ``names`` each child gets a Branch."""
        return self._client.instances.branch(instance, count, metadata=metadata, names=names)

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

    def rebase(self, branch: IdRef, target: IdRef, *, strategy: Any = None) -> Branch:
        """Replays the branch's changes onto ``target``'s head; moves its head and divergence point.
        In ``strategy``, ``ours`` is the target and ``theirs`` the branch (git's convention)."""
        return self._parse(self._client._call(rebase_request(branch, target, strategy)))


class AsyncBranches(AsyncAPIResource):
    def _parse(self, data: Any) -> Branch:
        return Branch.model_validate(data).bind(self._client)

    async def create(self, snapshot: IdRef, *, name: str | None = None, metadata: Mapping[str, str] | None = None) -> Branch:
        return self._parse(await self._client._call(_create_request(snapshot, name, metadata)))

    async def get(self, branch: IdRef) -> Branch:
        return self._parse(await self._client._call(APIRequest("GET", f"/v1/branches/{id_of(branch)}")))

    def list(
        self,
        parent_id: IdRef | None = None,
        *,
        name: str | None = None,
        metadata: Mapping[str, str] | None = None,
        page_size: int | None = None,
    ) -> AsyncPager[Branch]:
        return AsyncPager(self._client, _list_request(parent_id, name, metadata, page_size), self._parse)

    async def delete(self, branch: IdRef, *, force: bool = False) -> None:
        await self._client._call(_delete_request(branch, force))

    async def checkout(self, branch: IdRef) -> Instance:
        return Instance.model_validate(await self._client._call(_checkout_request(branch))).bind(self._client)

    async def commit(
        self, branch: IdRef, message: str | None = None, *, metadata: Mapping[str, str] | None = None
    ) -> Snapshot:
        data = await self._client._call(_commit_request(branch, message, metadata))
        return Snapshot.model_validate(data).bind(self._client)

    async def fork(
        self, instance: IdRef, count: int = 1, *, names: Sequence[str] | None = None, metadata: Mapping[str, str] | None = None
    ) -> BranchResult:
        return await self._client.instances.branch(instance, count, metadata=metadata, names=names)

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

    async def rebase(self, branch: IdRef, target: IdRef, *, strategy: Any = None) -> Branch:
        return self._parse(await self._client._call(rebase_request(branch, target, strategy)))
