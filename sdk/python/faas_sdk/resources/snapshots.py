"""Snapshots: create from an image, list, delete, and derive new ones by build steps.

Creates and steps (``exec``: ``POST /v1/snapshots/{id}/exec``; ``upload``: ``…/upload``) are
answered from the engine's step cache when the same one already ran (docs/step-cache.md): the
result then has ``cached=True`` (and an exec step the recorded ``step_result`` of the original
run). ``fresh=True``, or the client's ``OptimizationHints(reuse_snapshots=False)``, always runs.
With ``on_output`` an exec step streams its output while it runs (``…/exec/stream``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any, Awaitable, Callable, Generator, Mapping, Optional, Sequence

from .._base_client import APIRequest, BaseClient, drop_none, metadata_params
from .._bound import Snapshot
from .._cache import CacheConfigParam, HintsParam, policy_fields, reuse_of
from .._exceptions import NetworkError, error_from_body
from .._pagination import AsyncPager, SyncPager
from .._sse import SSEDecoder, ServerSentEvent
from .._tar import afile_chunks, aiter_chunks, file_body_headers, file_chunks, iter_chunks, pack_directory
from ..types import SnapshotPool
from ._commands import Command, command_body, request_timeout
from ._resource import AsyncAPIResource, SyncAPIResource
from ._network import Bandwidth, NetworkConfigParam, network_fields
from .._ids import IdRef, id_of
from ..types.diff import SnapshotDiff
from ._diff import diff_request, merge_request


#: ``on_output(data, stream)``: a chunk of a step's output as it runs; stream is "stdout" or "stderr".
OutputCallback = Callable[[str, str], object]
#: Seconds an upload step may take (the body is read whole, then written into a restored sandbox).
UPLOAD_TIMEOUT = 600.0


def _fresh(client: BaseClient, fresh: bool | None, hints: HintsParam | None = None) -> bool | None:
    """``fresh`` as sent: explicit, else what ``reuse_snapshots`` says (the call's hints, else the
    client's); omitted when False."""
    reuse = reuse_of(client.optimization_hints, hints)
    wanted = (not reuse) if fresh is None else fresh
    return True if wanted else None


def _create_request(
    image_id: str | None,
    name: str | None,
    vcpus: int | None,
    memory: int | None,
    disk_size: int | None,
    environment: Mapping[str, str] | None,
    metadata: Mapping[str, str] | None,
    ttl: int | None,
    fresh: bool | None,
    network_config: NetworkConfigParam | None = None,
    network_bandwidth: Bandwidth | None = None,
    max_processes: int | None = None,
    policy: Mapping[str, Any] | None = None,
) -> APIRequest:
    body = dict(policy or {}) | network_fields(network_config, network_bandwidth) | drop_none(
        {
            "imageId": image_id,
            "name": name,
            "vcpus": vcpus,
            "memory": memory,
            "diskSize": disk_size,
            "maxProcesses": max_processes,
            "environment": dict(environment) if environment is not None else None,
            "metadata": dict(metadata) if metadata is not None else None,
            "ttl": ttl,
            "fresh": fresh,
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


def _step_request(
    snapshot: IdRef, command: Command, options: Mapping[str, Any], client_timeout: float, fresh: bool | None, stream: bool
) -> APIRequest:
    return APIRequest(
        "POST",
        f"/v1/snapshots/{id_of(snapshot)}/exec" + ("/stream" if stream else ""),
        params=drop_none({"fresh": fresh}),
        json=command_body(command, **options),
        timeout=request_timeout(options.get("timeout"), client_timeout),
    )


def _clone_request(snapshot: IdRef, name: str | None, metadata: Mapping[str, str] | None, ttl: int | None) -> APIRequest:
    body = drop_none({"name": name, "metadata": dict(metadata) if metadata is not None else None, "ttl": ttl})
    return APIRequest("POST", f"/v1/snapshots/{id_of(snapshot)}/clone", json=body)


def _step_event(sse: ServerSentEvent, on_output: OutputCallback) -> Any:
    """The snapshot's data when the stream's last event arrives; None for an output chunk."""
    payload = sse.json()
    if sse.event in ("stdout", "stderr"):
        on_output(payload["data"], sse.event)
        return None
    if sse.event == "error":
        raise error_from_body(payload)
    if sse.event == "snapshot":
        return payload
    return None


def _stream_ended() -> NetworkError:
    return NetworkError("the step stream ended before its snapshot", code="network_error")


def _upload_request(snapshot: IdRef, local: Path, remote_path: str, fresh: bool | None, archive: IO[bytes] | None, chunks: Any) -> APIRequest:
    """A file is sent as it is (with its mode); a directory as the tar in ``archive``."""
    path = f"/v1/snapshots/{id_of(snapshot)}/upload"
    if archive is None:
        # Streamed from the file (``chunks`` is file_chunks or afile_chunks), never read whole.
        params = drop_none({"path": remote_path, "mode": f"{local.stat().st_mode & 0o777:04o}", "fresh": fresh})
        return APIRequest("POST", path, params=params, content=lambda: chunks(local), headers=file_body_headers(local), timeout=UPLOAD_TIMEOUT)
    params = drop_none({"path": remote_path, "format": "tar", "fresh": fresh})
    headers = {"Content-Type": "application/x-tar"}
    return APIRequest("POST", path, params=params, content=lambda: chunks(archive), headers=headers, timeout=UPLOAD_TIMEOUT)


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
        fresh: bool | None = None,
        network_config: NetworkConfigParam | None = None,
        network_bandwidth: Bandwidth | None = None,
        max_processes: int | None = None,
        cache_config: CacheConfigParam | None = None,
        optimization_hints: HintsParam | None = None,
    ) -> Snapshot:
        """Boots an image (the default one when ``image_id`` is None) and checkpoints it, or returns
        this key's root with the same content and metadata (``cached=True``) unless ``fresh``."""
        request = _create_request(
            image_id, name, vcpus, memory, disk_size, environment, metadata, ttl, _fresh(self._client, fresh, optimization_hints), network_config, network_bandwidth,
            max_processes,
            policy_fields(self._client.optimization_hints, cache_config, optimization_hints),
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

    def diff(self, base: IdRef, target: IdRef, *, text_diffs: Optional[bool] = None) -> SnapshotDiff:
        """What changed in the files from ``base`` to ``target``, answered from records kept with
        each snapshot (nothing is restored); ``text_diffs=False`` leaves the unified diffs out."""
        return SnapshotDiff.model_validate(self._client._call(diff_request("snapshots", base, target, text_diffs)))

    def merge(
        self,
        snapshots: Sequence[IdRef],
        *,
        strategy: Any = None,
        name: Optional[str] = None,
        metadata: Optional[Mapping[str, str]] = None,
    ) -> Snapshot:
        """Three-way merge of the snapshots' file changes onto the first (whose memory and processes
        the result keeps). Overlapping changes raise MergeConflictError unless ``strategy``
        (``"ours"``, ``"theirs"``, ``{"paths": {...}, "default": ...}``) resolves them."""
        return self._parse(self._client._call(merge_request("snapshots", snapshots, strategy, name, None, metadata)))

    def exec(
        self, snapshot: IdRef, command: Command, *, fresh: bool | None = None, on_output: OutputCallback | None = None, **options: Any
    ) -> Snapshot:
        """A build step: the child snapshot with ``command`` run (``ExecFailedError`` if it fails),
        or the cached one when it already ran on this parent. Options: ``cwd``, ``env``, ``user``,
        ``stdin``, ``timeout`` (seconds). ``on_output(data, stream)`` gets the output as it runs
        (on a hit: the recorded output, all of stdout then all of stderr)."""
        request = _step_request(snapshot, command, options, self._client.timeout, _fresh(self._client, fresh), on_output is not None)
        if on_output is None:
            return self._parse(self._client._call(request))
        with self._client._stream(request) as response:
            decoder = SSEDecoder()
            for line in response.iter_lines():
                sse = decoder.feed(line)
                done = _step_event(sse, on_output) if sse is not None else None
                if done is not None:
                    return self._parse(done)
        raise _stream_ended()

    def upload(self, snapshot: IdRef, local_path: str | os.PathLike[str], remote_path: str, *, fresh: bool | None = None) -> Snapshot:
        """A child snapshot with ``local_path`` copied to ``remote_path`` (a file keeps its mode; a
        directory's contents go under it), cached by content."""
        local = Path(local_path)
        if local.is_file():
            return self._parse(self._client._call(_upload_request(snapshot, local, remote_path, _fresh(self._client, fresh), None, file_chunks)))
        with pack_directory(local) as archive:
            request = _upload_request(snapshot, local, remote_path, _fresh(self._client, fresh), archive, iter_chunks)
            return self._parse(self._client._call(request))

    def clone(
        self, snapshot: IdRef, *, name: str | None = None, metadata: Mapping[str, str] | None = None, ttl: int | None = None
    ) -> Snapshot:
        """A new snapshot with the same state, made on the engine without restoring anything: it
        shares the image files (deleting either never affects the other) and has the same
        checksum, parent and history. ``metadata`` defaults to a copy of the original's."""
        return self._parse(self._client._call(_clone_request(snapshot, name, metadata, ttl)))


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
        fresh: bool | None = None,
        network_config: NetworkConfigParam | None = None,
        network_bandwidth: Bandwidth | None = None,
        max_processes: int | None = None,
        cache_config: CacheConfigParam | None = None,
        optimization_hints: HintsParam | None = None,
    ) -> SnapshotChain:
        """Awaitable; chain steps before awaiting: ``await client.snapshots.create().exec("…")``."""
        request = _create_request(
            image_id, name, vcpus, memory, disk_size, environment, metadata, ttl, _fresh(self._client, fresh, optimization_hints), network_config, network_bandwidth,
            max_processes,
            policy_fields(self._client.optimization_hints, cache_config, optimization_hints),
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

    async def diff(self, base: IdRef, target: IdRef, *, text_diffs: Optional[bool] = None) -> SnapshotDiff:
        return SnapshotDiff.model_validate(await self._client._call(diff_request("snapshots", base, target, text_diffs)))

    async def merge(
        self,
        snapshots: Sequence[IdRef],
        *,
        strategy: Any = None,
        name: Optional[str] = None,
        metadata: Optional[Mapping[str, str]] = None,
    ) -> Snapshot:
        return self._parse(await self._client._call(merge_request("snapshots", snapshots, strategy, name, None, metadata)))

    async def exec(
        self, snapshot: IdRef, command: Command, *, fresh: bool | None = None, on_output: OutputCallback | None = None, **options: Any
    ) -> Snapshot:
        """See :meth:`Snapshots.exec`."""
        request = _step_request(snapshot, command, options, self._client.timeout, _fresh(self._client, fresh), on_output is not None)
        if on_output is None:
            return self._parse(await self._client._call(request))
        async with self._client._stream(request) as response:
            decoder = SSEDecoder()
            async for line in response.aiter_lines():
                sse = decoder.feed(line)
                done = _step_event(sse, on_output) if sse is not None else None
                if done is not None:
                    return self._parse(done)
        raise _stream_ended()

    async def upload(self, snapshot: IdRef, local_path: str | os.PathLike[str], remote_path: str, *, fresh: bool | None = None) -> Snapshot:
        """See :meth:`Snapshots.upload`."""
        local = Path(local_path)
        if local.is_file():
            request = _upload_request(snapshot, local, remote_path, _fresh(self._client, fresh), None, afile_chunks)
            return self._parse(await self._client._call(request))
        with pack_directory(local) as archive:
            request = _upload_request(snapshot, local, remote_path, _fresh(self._client, fresh), archive, aiter_chunks)
            return self._parse(await self._client._call(request))

    async def clone(
        self, snapshot: IdRef, *, name: str | None = None, metadata: Mapping[str, str] | None = None, ttl: int | None = None
    ) -> Snapshot:
        return self._parse(await self._client._call(_clone_request(snapshot, name, metadata, ttl)))


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

    def upload(self, local_path: str, remote_path: str, *, fresh: bool | None = None) -> SnapshotChain:
        async def step() -> Snapshot:
            return await self._snapshots.upload(await self._resolve(), local_path, remote_path, fresh=fresh)

        return SnapshotChain(self._snapshots, step)

    def __await__(self) -> Generator[Any, None, Snapshot]:
        return self._resolve().__await__()
