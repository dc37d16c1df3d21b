"""Instance lifecycle, context managers, paging and errors, with both clients."""

from __future__ import annotations

import pytest

from faas_sdk import (
    AsyncFaaSClient,
    FaaSClient,
    FaaSTimeoutError,
    Instance,
    InstanceNotFoundError,
    InstanceNotReadyError,
    InvalidRequestError,
    ManagedInstance,
    NetworkConfig,
    NotFoundError,
    Snapshot,
)


class Boom(Exception):
    pass


def test_with_block_that_raises_still_stops_the_instance(client: FaaSClient, base_snapshot: Snapshot) -> None:
    started: list[Instance] = []
    with pytest.raises(Boom):
        with client.instances.start(base_snapshot) as instance:
            started.append(instance)
            assert instance.exec("echo inside").stdout == "inside\n"
            raise Boom()
    assert client.instances.get(started[0].id).state == "stopped"


def test_managed_instance_wrapper(client: FaaSClient, base_snapshot: Snapshot) -> None:
    with ManagedInstance(client.instances.start(base_snapshot)) as instance:
        instance_id = instance.id
    assert client.instances.get(instance_id).state == "stopped"


async def test_async_with_block_that_raises_still_stops_the_instance(aclient: AsyncFaaSClient, base_snapshot: Snapshot) -> None:
    started: list[Instance] = []
    with pytest.raises(Boom):
        async with aclient.instances.start(base_snapshot.id) as instance:
            started.append(instance)
            assert (await aclient.exec("echo inside", instance)).stdout == "inside\n"
            raise Boom()
    assert (await aclient.instances.get(started[0].id)).state == "stopped"


def test_lifecycle_and_bound_methods(client: FaaSClient, base_snapshot: Snapshot) -> None:
    instance = client.instances.start(base_snapshot, metadata={"test": "lifecycle"}, wait=False)
    try:
        ready = client.instances.wait_until_ready(instance, timeout=20)
        assert ready.state == "ready" and ready.ready_at is not None
        assert instance.pause().state == "paused"
        with pytest.raises(InstanceNotReadyError) as caught:
            instance.exec("true")
        assert caught.value.details and caught.value.details["state"] == "paused"
        assert caught.value.request_id and caught.value.request_id.startswith("req_")
        assert instance.resume().state == "ready"
        metrics = client.instances.get_metrics(instance)
        assert metrics.instance_id == instance.id and metrics.memory.limit_bytes > 0
        updated = client.instances.set_metadata(instance, {"test": "renamed"})
        assert updated.metadata == {"test": "renamed"}
    finally:
        instance.stop()
    assert client.instances.get(instance.id).state == "stopped"
    instance.delete()
    with pytest.raises(InstanceNotFoundError):
        client.instances.get(instance.id)


def test_wait_for_an_unreachable_state_times_out_or_refuses(client: FaaSClient, base_snapshot: Snapshot) -> None:
    with client.instances.start(base_snapshot) as instance:
        with pytest.raises((FaaSTimeoutError, InstanceNotReadyError)):
            client.instances.wait_until_ready(instance, timeout=0.3, state="paused")


def test_list_pages_through_every_instance(client: FaaSClient, base_snapshot: Snapshot) -> None:
    first = client.instances.start(base_snapshot, metadata={"test": "paging"})
    second = client.instances.start(base_snapshot, metadata={"test": "paging"})
    try:
        listed = [i.id for i in client.instances.list(metadata={"test": "paging"}, page_size=1)]
        assert listed == [second.id, first.id]
    finally:
        first.stop()
        second.stop()


async def test_async_list_pages_and_lifecycle(aclient: AsyncFaaSClient, base_snapshot: Snapshot) -> None:
    first = await aclient.instances.start(base_snapshot.id, metadata={"test": "apaging"})
    second = await aclient.instances.start(base_snapshot.id, metadata={"test": "apaging"})
    try:
        listed = [i.id async for i in aclient.instances.list(metadata={"test": "apaging"}, page_size=1)]
        assert listed == [second.id, first.id]
        assert (await aclient.instances.pause(first)).state == "paused"
        assert (await aclient.instances.resume(first)).state == "ready"
        assert (await aclient.instances.restart(first)).state == "ready"
    finally:
        await aclient.instances.stop(first)
        await aclient.instances.stop(second)


async def test_async_objects_point_to_the_awaitable_api(aclient: AsyncFaaSClient, base_snapshot: Snapshot) -> None:
    snapshot = await aclient.snapshots.get(base_snapshot.id)
    with pytest.raises(TypeError, match="await"):
        snapshot.exec("true")


def test_network_config_and_bandwidth_models_inheritance_and_unlimited(client: FaaSClient, base_snapshot: Snapshot) -> None:
    policy = NetworkConfig.model_validate({"egress": {"mode": "deny-all", "allow": ["10.0.0.0/8", "PyPI.org"]}})
    with client.instances.start(base_snapshot, network_config=policy, network_bandwidth=30) as instance:
        assert instance.network_config.egress.mode == "deny-all"
        assert instance.network_config.egress.allow == ["10.0.0.0/8", "pypi.org"]
        assert instance.network_config.egress.dns is True
        assert instance.resources.network_bandwidth == 30
        branch = instance.branch(1, network_bandwidth="unlimited")
        child = branch.instances[0]
        try:
            assert child.network_config == instance.network_config
            assert child.resources.network_bandwidth is None
        finally:
            child.delete()
        changed = instance.set_network(network_config={"egress": {"deny": ["192.0.2.0/24"]}})
        assert changed.network_config.egress.mode == "allow-all"
        assert changed.network_config.egress.deny == ["192.0.2.0/24"]
        assert changed.resources.network_bandwidth == 30
        with pytest.raises(InvalidRequestError) as err:
            client.instances.set_network(instance, network_config={"egress": {"deny": ["192.0.2.1/24"]}})
        assert "did you mean 192.0.2.0/24" in str(err.value)


def test_unknown_route_is_not_found(client: FaaSClient) -> None:
    with pytest.raises(NotFoundError) as caught:
        client.raw("GET", "/v1/nothing-here")
    assert caught.value.code == "not_found" and caught.value.status_code == 404
