"""Instances: running sandboxes restored from a snapshot, their lifecycle, and live branching."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .._base_client import APIRequest, drop_none, metadata_params
from .._cache import CacheConfigParam, HintsParam, policy_fields
from .._bound import BranchResult, Instance, Snapshot
from .._ids import IdRef, id_of
from .._managed import AsyncManagedInstance
from .._pagination import AsyncPager, SyncPager
from ..types import InstanceLogs, InstanceMetrics, InstanceState
from ._commands import to_millis
from ._network import Bandwidth, NetworkConfigParam, bandwidth_json, network_config_json, network_fields, set_network_request
from ._resource import AsyncAPIResource, SyncAPIResource

#: Seconds ``wait_until_ready`` waits by default (the engine's default for ``/wait``).
DEFAULT_WAIT = 30.0


def _start_request(
    snapshot_id: IdRef,
    metadata: Mapping[str, str] | None,
    ttl: int | None,
    ttl_action: str | None,
    auto_stop: bool | None,
    vcpus: int | None,
    memory: int | None,
    disk_size: int | None,
    wait: bool,
    network_config: NetworkConfigParam | None = None,
    network_bandwidth: Bandwidth | None = None,
    wake_on: Mapping[str, bool] | None = None,
    max_processes: int | None = None,
) -> APIRequest:
    resources = {
        **drop_none({"vcpus": vcpus, "memory": memory, "diskSize": disk_size, "maxProcesses": max_processes}),
        **bandwidth_json(network_bandwidth),
    }
    body = drop_none(
        {
            "snapshotId": id_of(snapshot_id),
            "metadata": dict(metadata) if metadata is not None else None,
            "ttl": ttl,
            "ttlAction": ttl_action,
            "autoStop": auto_stop,
            "resources": resources or None,
            "networkConfig": network_config_json(network_config),
            "wakeOn": dict(wake_on) if wake_on is not None else None,
        }
    )
    return APIRequest("POST", "/v1/instances", params=None if wait else {"wait": False}, json=body)


def _list_request(
    state: InstanceState | None,
    snapshot_id: str | None,
    parent_id: str | None,
    metadata: Mapping[str, str] | None,
    page_size: int | None,
) -> APIRequest:
    params = drop_none({"limit": page_size, "state": state, "snapshotId": snapshot_id, "parentId": parent_id})
    return APIRequest("GET", "/v1/instances", params={**params, **metadata_params(metadata)})


def _action(instance: IdRef, action: str) -> APIRequest:
    return APIRequest("POST", f"/v1/instances/{id_of(instance)}/{action}")


def _logs_request(instance: IdRef, since: int | None, tail: int | None) -> APIRequest:
    params = {k: v for k, v in (("since", since), ("tail", tail)) if v is not None}
    return APIRequest("GET", f"/v1/instances/{id_of(instance)}/logs", params=params or None)


def _wait_request(instance: IdRef, state: InstanceState, timeout: float) -> APIRequest:
    # The engine long-polls; the HTTP timeout must outlast its own.
    return APIRequest(
        "GET",
        f"/v1/instances/{id_of(instance)}/wait",
        params={"state": state, "timeout": to_millis(timeout)},
        timeout=timeout + 10,
    )


def _snapshot_request(
    instance: IdRef, name: str | None, metadata: Mapping[str, str] | None, ttl: int | None, policy: Mapping[str, Any] | None = None
) -> APIRequest:
    body = dict(policy or {}) | drop_none({"name": name, "metadata": dict(metadata) if metadata is not None else None, "ttl": ttl})
    return APIRequest("POST", f"/v1/instances/{id_of(instance)}/snapshot", json=body)


def _restart_request(instance: IdRef, from_latest_checkpoint: bool | None) -> APIRequest:
    body = None if from_latest_checkpoint is None else {"fromLatestCheckpoint": from_latest_checkpoint}
    return APIRequest("POST", f"/v1/instances/{id_of(instance)}/restart", json=body)


def _rollback_request(instance: IdRef, steps: int) -> APIRequest:
    return APIRequest("POST", f"/v1/instances/{id_of(instance)}/rollback", json={"steps": steps})


def _branch_request(
    instance: IdRef,
    count: int,
    metadata: Mapping[str, str] | None,
    wait: bool,
    names: Sequence[str] | None = None,
    network_config: NetworkConfigParam | None = None,
    network_bandwidth: Bandwidth | None = None,
    policy: Mapping[str, Any] | None = None,
) -> APIRequest:
    body: dict[str, Any] = {**(policy or {}), "count": count, "wait": wait, **network_fields(network_config, network_bandwidth)}
    if metadata is not None:
        body["metadata"] = dict(metadata)
    if names is not None:
        body["names"] = list(names)
    return APIRequest("POST", f"/v1/instances/{id_of(instance)}/branch", json=body)


class Instances(SyncAPIResource):
    def _parse(self, data: Any) -> Instance:
        return Instance.model_validate(data).bind(self._client)

    def start(
        self,
        snapshot_id: IdRef,
        *,
        metadata: Mapping[str, str] | None = None,
        ttl: int | None = None,
        ttl_action: str | None = None,
        auto_stop: bool | None = None,
        vcpus: int | None = None,
        memory: int | None = None,
        disk_size: int | None = None,
        network_config: NetworkConfigParam | None = None,
        network_bandwidth: Bandwidth | None = None,
        wait: bool = True,
        wake_on: Mapping[str, bool] | None = None,
        max_processes: int | None = None,
    ) -> Instance:
        """Restores ``snapshot_id`` (an id or a Snapshot) into a new instance; use it in ``with`` to stop it afterwards."""
        request = _start_request(
            snapshot_id, metadata, ttl, ttl_action, auto_stop, vcpus, memory, disk_size, wait, network_config, network_bandwidth, wake_on,
            max_processes,
        )
        return self._parse(self._client._call(request))

    def get(self, instance: IdRef) -> Instance:
        return self._parse(self._client._call(APIRequest("GET", f"/v1/instances/{id_of(instance)}")))

    def list(
        self,
        *,
        state: InstanceState | None = None,
        snapshot_id: str | None = None,
        parent_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
        page_size: int | None = None,
    ) -> SyncPager[Instance]:
        return SyncPager(self._client, _list_request(state, snapshot_id, parent_id, metadata, page_size), self._parse)

    def stop(self, instance: IdRef) -> Instance:
        return self._parse(self._client._call(_action(instance, "stop")))

    def pause(self, instance: IdRef) -> Instance:
        return self._parse(self._client._call(_action(instance, "pause")))

    def resume(self, instance: IdRef) -> Instance:
        return self._parse(self._client._call(_action(instance, "resume")))

    def restart(self, instance: IdRef, *, from_latest_checkpoint: bool | None = None) -> Instance:
        """Restores it again under the same id, keeping its id, metadata, ttl, resources and
        checkpoints: from its snapshot (its timeline then ends there), or with
        ``from_latest_checkpoint=True`` from the latest checkpoint of its timeline."""
        return self._parse(self._client._call(_restart_request(instance, from_latest_checkpoint)))

    def rollback(self, instance: IdRef, steps: int = 1) -> Instance:
        """See :meth:`faas_sdk.resources.state.State.rollback`."""
        return self._parse(self._client._call(_rollback_request(instance, steps)))

    def delete(self, instance: IdRef) -> None:
        self._client._call(APIRequest("DELETE", f"/v1/instances/{id_of(instance)}"))

    def wait_until_ready(self, instance: IdRef, timeout: float = DEFAULT_WAIT, *, state: InstanceState = "ready") -> Instance:
        """Blocks until the instance reaches ``state`` (``FaaSTimeoutError`` after ``timeout`` s)."""
        return self._parse(self._client._call(_wait_request(instance, state, timeout)))

    def wait(self, instance: IdRef, state: InstanceState, timeout: float = DEFAULT_WAIT) -> Instance:
        """Blocks until the instance reaches ``state`` (TypeScript's ``instances.wait``)."""
        return self.wait_until_ready(instance, timeout, state=state)

    def get_metrics(self, instance: IdRef) -> InstanceMetrics:
        return InstanceMetrics.model_validate(self._client._call(APIRequest("GET", f"/v1/instances/{id_of(instance)}/metrics")))

    def logs(self, instance: IdRef, *, since: int | None = None, tail: int | None = None) -> InstanceLogs:
        """The instance log: background-process output and start/exit lines, after ``since``, the last ``tail``."""
        return InstanceLogs.model_validate(self._client._call(_logs_request(instance, since, tail)))

    def set_metadata(self, instance: IdRef, metadata: Mapping[str, str]) -> Instance:
        request = APIRequest("PUT", f"/v1/instances/{id_of(instance)}/metadata", json=dict(metadata))
        return self._parse(self._client._call(request))

    def set_network(
        self, instance: IdRef, *, network_config: NetworkConfigParam | None = None, network_bandwidth: Bandwidth | None = None
    ) -> Instance:
        """Changes the egress policy and/or bandwidth limit; a running instance gets them at once."""
        return self._parse(self._client._call(set_network_request(instance, network_config, network_bandwidth)))

    def snapshot(
        self,
        instance: IdRef,
        *,
        name: str | None = None,
        metadata: Mapping[str, str] | None = None,
        ttl: int | None = None,
        cache_config: CacheConfigParam | None = None,
        optimization_hints: HintsParam | None = None,
    ) -> Snapshot:
        """Checkpoints the running instance (it keeps running) into a new snapshot."""
        data = self._client._call(
            _snapshot_request(instance, name, metadata, ttl, policy_fields(self._client.optimization_hints, cache_config, optimization_hints))
        )
        return Snapshot.model_validate(data).bind(self._client)

    def branch(
        self,
        instance: IdRef,
        count: int = 1,
        *,
        metadata: Mapping[str, str] | None = None,
        wait: bool = True,
        names: Sequence[str] | None = None,
        network_config: NetworkConfigParam | None = None,
        network_bandwidth: Bandwidth | None = None,
        cache_config: CacheConfigParam | None = None,
        optimization_hints: HintsParam | None = None,
    ) -> BranchResult:
        """Live-branches a running instance into ``count`` copies (memory, processes and files);
        with ``names`` (one per copy) each copy also gets a Branch record (``result.branches``)."""
        data = self._client._call(_branch_request(
                instance, count, metadata, wait, names, network_config, network_bandwidth,
                policy_fields(self._client.optimization_hints, cache_config, optimization_hints),
            ))
        return BranchResult.model_validate(data).bind(self._client)


class AsyncInstances(AsyncAPIResource):
    def _parse(self, data: Any) -> Instance:
        return Instance.model_validate(data).bind(self._client)

    def start(
        self,
        snapshot_id: IdRef,
        *,
        metadata: Mapping[str, str] | None = None,
        ttl: int | None = None,
        ttl_action: str | None = None,
        auto_stop: bool | None = None,
        vcpus: int | None = None,
        memory: int | None = None,
        disk_size: int | None = None,
        network_config: NetworkConfigParam | None = None,
        network_bandwidth: Bandwidth | None = None,
        wait: bool = True,
        wake_on: Mapping[str, bool] | None = None,
        max_processes: int | None = None,
    ) -> AsyncManagedInstance:
        """``await`` it for the instance, or ``async with`` it to stop the instance on exit."""
        request = _start_request(
            snapshot_id, metadata, ttl, ttl_action, auto_stop, vcpus, memory, disk_size, wait, network_config, network_bandwidth, wake_on,
            max_processes,
        )

        async def start() -> Instance:
            return self._parse(await self._client._call(request))

        return AsyncManagedInstance(start, self.stop)

    async def get(self, instance: IdRef) -> Instance:
        return self._parse(await self._client._call(APIRequest("GET", f"/v1/instances/{id_of(instance)}")))

    def list(
        self,
        *,
        state: InstanceState | None = None,
        snapshot_id: str | None = None,
        parent_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
        page_size: int | None = None,
    ) -> AsyncPager[Instance]:
        return AsyncPager(self._client, _list_request(state, snapshot_id, parent_id, metadata, page_size), self._parse)

    async def stop(self, instance: IdRef) -> Instance:
        return self._parse(await self._client._call(_action(instance, "stop")))

    async def pause(self, instance: IdRef) -> Instance:
        return self._parse(await self._client._call(_action(instance, "pause")))

    async def resume(self, instance: IdRef) -> Instance:
        return self._parse(await self._client._call(_action(instance, "resume")))

    async def restart(self, instance: IdRef, *, from_latest_checkpoint: bool | None = None) -> Instance:
        return self._parse(await self._client._call(_restart_request(instance, from_latest_checkpoint)))

    async def rollback(self, instance: IdRef, steps: int = 1) -> Instance:
        return self._parse(await self._client._call(_rollback_request(instance, steps)))

    async def delete(self, instance: IdRef) -> None:
        await self._client._call(APIRequest("DELETE", f"/v1/instances/{id_of(instance)}"))

    async def wait_until_ready(
        self, instance: IdRef, timeout: float = DEFAULT_WAIT, *, state: InstanceState = "ready"
    ) -> Instance:
        return self._parse(await self._client._call(_wait_request(instance, state, timeout)))

    async def wait(self, instance: IdRef, state: InstanceState, timeout: float = DEFAULT_WAIT) -> Instance:
        return await self.wait_until_ready(instance, timeout, state=state)

    async def get_metrics(self, instance: IdRef) -> InstanceMetrics:
        data = await self._client._call(APIRequest("GET", f"/v1/instances/{id_of(instance)}/metrics"))
        return InstanceMetrics.model_validate(data)

    async def logs(self, instance: IdRef, *, since: int | None = None, tail: int | None = None) -> InstanceLogs:
        return InstanceLogs.model_validate(await self._client._call(_logs_request(instance, since, tail)))

    async def set_metadata(self, instance: IdRef, metadata: Mapping[str, str]) -> Instance:
        request = APIRequest("PUT", f"/v1/instances/{id_of(instance)}/metadata", json=dict(metadata))
        return self._parse(await self._client._call(request))

    async def set_network(
        self, instance: IdRef, *, network_config: NetworkConfigParam | None = None, network_bandwidth: Bandwidth | None = None
    ) -> Instance:
        """Changes the egress policy and/or bandwidth limit; a running instance gets them at once."""
        return self._parse(await self._client._call(set_network_request(instance, network_config, network_bandwidth)))

    async def snapshot(
        self,
        instance: IdRef,
        *,
        name: str | None = None,
        metadata: Mapping[str, str] | None = None,
        ttl: int | None = None,
        cache_config: CacheConfigParam | None = None,
        optimization_hints: HintsParam | None = None,
    ) -> Snapshot:
        data = await self._client._call(
            _snapshot_request(instance, name, metadata, ttl, policy_fields(self._client.optimization_hints, cache_config, optimization_hints))
        )
        return Snapshot.model_validate(data).bind(self._client)

    async def branch(
        self,
        instance: IdRef,
        count: int = 1,
        *,
        metadata: Mapping[str, str] | None = None,
        wait: bool = True,
        names: Sequence[str] | None = None,
        network_config: NetworkConfigParam | None = None,
        network_bandwidth: Bandwidth | None = None,
        cache_config: CacheConfigParam | None = None,
        optimization_hints: HintsParam | None = None,
    ) -> BranchResult:
        data = await self._client._call(_branch_request(
                instance, count, metadata, wait, names, network_config, network_bandwidth,
                policy_fields(self._client.optimization_hints, cache_config, optimization_hints),
            ))
        return BranchResult.model_validate(data).bind(self._client)
