"""Snapshots: create from an image, list, delete, and derive new ones by build steps.

A step (``exec``) runs on the engine (``POST /v1/snapshots/{id}/exec``), which caches it by the
parent's digest and the step. ``upload`` has no engine route of its own, so the SDK composes it:
start an instance of the snapshot, upload, snapshot the instance, delete the instance.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Generator, Mapping, Optional

from .._base_client import APIRequest, drop_none, metadata_params
from .._bound import Snapshot
from .._pagination import AsyncPager, SyncPager
from ..types import SnapshotPool
from ._commands import Command, command_body, request_timeout
from ._resource import AsyncAPIResource, SyncAPIResource
from ._network import Bandwidth, NetworkConfigParam, network_fields
from .._ids import IdRef, id_of


def _create_request(
    image_id: str | None,
    name: str | None,
    vcpus: int | None,
    memory: int | None,
    disk_size: int | None,
    environment: Mapping[str, str] | None,
    metadata: Mapping[str, str] | None,
    ttl: int | None,
    network_config: NetworkConfigParam | None = None,
    network_bandwidth: Bandwidth | None = None,
) -> APIRequest:
    body = network_fields(network_config, network_bandwidth) | drop_none(
        {
            "imageId": image_id,
            "name": name,
            "vcpus": vcpus,
            "memory": memory,
            "diskSize": disk_size,
            "environment": dict(environment) if environment is not None else None,
            "metadata": dict(metadata) if metadata is not None else None,
            "ttl": ttl,
        }
    )
    return APIRequest("POST", "/v1/snapshots", json=body)


def _list_request(
    metadata: Mapping[str, str] | None,
    digest: str | None,
    image_id: str | None,
    parent_id: str | None,
    page_size: int | None,
) -> APIRequest:
    params = drop_none({"limit": page_size, "digest": digest, "imageId": image_id, "parentId": parent_id})
    return APIRequest("GET", "/v1/snapshots", params={**params, **metadata_params(metadata)})


def _step_request(snapshot: IdRef, command: Command, options: Mapping[str, Any], client_timeout: float) -> APIRequest:
    return APIRequest(
        "POST",
        f"/v1/snapshots/{id_of(snapshot)}/exec",
        json=command_body(command, **options),
        timeout=request_timeout(options.get("timeout"), client_timeout),
    )


class Snapshots(SyncAPIResource):
    def _parse(self, data: Any) -> Snapshot:
        return Snapshot.model_validate(data).bind(self._client)

    def create(
        self,
        *,
        image_id: str | None = None,
        name: str | None = None,
        vcpus: int | None = None,
        memory: int | None = None,
        disk_size: int | None = None,
        environment: Mapping[str, str] | None = None,
        metadata: Mapping[str, str] | None = None,
        ttl: int | None = None,
        network_config: NetworkConfigParam | None = None,
        network_bandwidth: Bandwidth | None = None,
    ) -> Snapshot:
        """Boots an image (the default one when ``image_id`` is None) and checkpoints it."""
        request = _create_request(
            image_id, name, vcpus, memory, disk_size, environment, metadata, ttl, network_config, network_bandwidth
        )
        return self._parse(self._client._call(request))

    def get(self, snapshot: IdRef) -> Snapshot:
        return self._parse(self._client._call(APIRequest("GET", f"/v1/snapshots/{id_of(snapshot)}")))

    def list(
        self,
        *,
        metadata: Mapping[str, str] | None = None,
        digest: str | None = None,
        image_id: str | None = None,
        parent_id: str | None = None,
        page_size: int | None = None,
    ) -> SyncPager[Snapshot]:
        return SyncPager(self._client, _list_request(metadata, digest, image_id, parent_id, page_size), self._parse)

    def delete(self, snapshot: IdRef, *, force: bool = False) -> None:
        params = {"force": True} if force else None
        self._client._call(APIRequest("DELETE", f"/v1/snapshots/{id_of(snapshot)}", params=params))

    def set_metadata(self, snapshot: IdRef, metadata: Mapping[str, str]) -> Snapshot:
        request = APIRequest("PUT", f"/v1/snapshots/{id_of(snapshot)}/metadata", json=dict(metadata))
        return self._parse(self._client._call(request))

    def get_pool(self, snapshot: IdRef) -> SnapshotPool:
        return SnapshotPool.model_validate(self._client._call(APIRequest("GET", f"/v1/snapshots/{id_of(snapshot)}/pool")))

    def set_pool(self, snapshot: IdRef, min_instances: int, max_instances: Optional[int] = None) -> SnapshotPool:
        """The snapshot's AutoScaling: ``min_instances`` paused clones kept ready (0 drains them) and,
        with ``max_instances``, no more than that many live instances of it (``ResourceLimitError``
        beyond). Replaces the whole setting: ``max_instances=None`` means no cap."""
        body = {"minInstances": min_instances, "maxInstances": max_instances}
        request = APIRequest("PUT", f"/v1/snapshots/{id_of(snapshot)}/pool", json=body)
        return SnapshotPool.model_validate(self._client._call(request))

    def exec(self, snapshot: IdRef, command: Command, **options: Any) -> Snapshot:
        """A build step: the child snapshot with ``command`` run (``ExecFailedError`` if it fails).
        Options: ``cwd``, ``env``, ``user``, ``stdin``, ``timeout`` (seconds)."""
        return self._parse(self._client._call(_step_request(snapshot, command, options, self._client.timeout)))

    def upload(self, snapshot: IdRef, local_path: str, remote_path: str) -> Snapshot:
        """A child snapshot with ``local_path`` copied to ``remote_path`` (via a temporary instance)."""
        instance = self._client.instances.start(id_of(snapshot))
        try:
            self._client.files.upload(instance.id, local_path, remote_path)
            return self._client.instances.snapshot(instance.id)
        finally:
            self._client.instances.delete(instance.id)


class AsyncSnapshots(AsyncAPIResource):
    def _parse(self, data: Any) -> Snapshot:
        return Snapshot.model_validate(data).bind(self._client)

    def create(
        self,
        *,
        image_id: str | None = None,
        name: str | None = None,
        vcpus: int | None = None,
        memory: int | None = None,
        disk_size: int | None = None,
        environment: Mapping[str, str] | None = None,
        metadata: Mapping[str, str] | None = None,
        ttl: int | None = None,
        network_config: NetworkConfigParam | None = None,
        network_bandwidth: Bandwidth | None = None,
    ) -> SnapshotChain:
        """Awaitable; chain steps before awaiting: ``await client.snapshots.create().exec("…")``."""
        request = _create_request(
            image_id, name, vcpus, memory, disk_size, environment, metadata, ttl, network_config, network_bandwidth
        )

        async def create() -> Snapshot:
            return self._parse(await self._client._call(request))

        return SnapshotChain(self, create)

    def chain(self, snapshot: IdRef) -> SnapshotChain:
        """Starts a chain of steps from an existing snapshot."""

        async def existing() -> Snapshot:
            return snapshot if isinstance(snapshot, Snapshot) else await self.get(snapshot)

        return SnapshotChain(self, existing)

    async def get(self, snapshot: IdRef) -> Snapshot:
        return self._parse(await self._client._call(APIRequest("GET", f"/v1/snapshots/{id_of(snapshot)}")))

    def list(
        self,
        *,
        metadata: Mapping[str, str] | None = None,
        digest: str | None = None,
        image_id: str | None = None,
        parent_id: str | None = None,
        page_size: int | None = None,
    ) -> AsyncPager[Snapshot]:
        return AsyncPager(self._client, _list_request(metadata, digest, image_id, parent_id, page_size), self._parse)

    async def delete(self, snapshot: IdRef, *, force: bool = False) -> None:
        params = {"force": True} if force else None
        await self._client._call(APIRequest("DELETE", f"/v1/snapshots/{id_of(snapshot)}", params=params))

    async def set_metadata(self, snapshot: IdRef, metadata: Mapping[str, str]) -> Snapshot:
        request = APIRequest("PUT", f"/v1/snapshots/{id_of(snapshot)}/metadata", json=dict(metadata))
        return self._parse(await self._client._call(request))

    async def get_pool(self, snapshot: IdRef) -> SnapshotPool:
        data = await self._client._call(APIRequest("GET", f"/v1/snapshots/{id_of(snapshot)}/pool"))
        return SnapshotPool.model_validate(data)

    async def set_pool(self, snapshot: IdRef, min_instances: int, max_instances: Optional[int] = None) -> SnapshotPool:
        """See :meth:`Snapshots.set_pool`."""
        body = {"minInstances": min_instances, "maxInstances": max_instances}
        request = APIRequest("PUT", f"/v1/snapshots/{id_of(snapshot)}/pool", json=body)
        return SnapshotPool.model_validate(await self._client._call(request))

    async def exec(self, snapshot: IdRef, command: Command, **options: Any) -> Snapshot:
        return self._parse(await self._client._call(_step_request(snapshot, command, options, self._client.timeout)))

    async def upload(self, snapshot: IdRef, local_path: str, remote_path: str) -> Snapshot:
        instance = await self._client.instances.start(id_of(snapshot))
        try:
            await self._client.files.upload(instance.id, local_path, remote_path)
            return await self._client.instances.snapshot(instance.id)
        finally:
            await self._client.instances.delete(instance.id)


class SnapshotChain:
    """A lazy sequence of snapshot steps for the async client. Nothing runs until it is awaited;
    each ``exec``/``upload`` returns a new chain, so partial chains can be reused."""

    def __init__(self, snapshots: AsyncSnapshots, resolve: Callable[[], Awaitable[Snapshot]]) -> None:
        self._snapshots = snapshots
        self._resolve = resolve

    def exec(self, command: Command, **options: Any) -> SnapshotChain:
        async def step() -> Snapshot:
            return await self._snapshots.exec(await self._resolve(), command, **options)

        return SnapshotChain(self._snapshots, step)

    def upload(self, local_path: str, remote_path: str) -> SnapshotChain:
        async def step() -> Snapshot:
            return await self._snapshots.upload(await self._resolve(), local_path, remote_path)

        return SnapshotChain(self._snapshots, step)

    def __await__(self) -> Generator[Any, None, Snapshot]:
        return self._resolve().__await__()
