"""map / all / race / pool over live branches, and client.branch()."""

from __future__ import annotations

import threading
import time

import pytest

from faas_sdk import AsyncFaaSClient, FaaSClient, Instance, ParallelError, Snapshot


@pytest.fixture
def source(client: FaaSClient, base_snapshot: Snapshot):  # type: ignore[no-untyped-def]
    with client.instances.start(base_snapshot) as instance:
        instance.exec("echo shared > /root/shared")
        yield instance


def test_map_all_race(client: FaaSClient, source: Instance) -> None:
    squares = client.parallel.map([1, 2, 3], lambda n, child: child.exec(f"echo $(({n}*{n})); cat /root/shared").stdout, source=source, concurrency=2)
    assert squares == ["1\nshared\n", "4\nshared\n", "9\nshared\n"]

    ids = client.parallel.all(source, [lambda child: child.id, lambda child: child.id])
    assert len(set(ids)) == 2 and all(client.instances.get(i).state == "stopped" for i in ids)

    def slow(child: Instance) -> str:
        child.exec("sleep 3")
        return "slow"

    def fails(child: Instance) -> str:
        raise ValueError("no")

    def fast(child: Instance) -> str:
        return child.exec("echo fast").stdout.strip()

    won = client.parallel.race(source, [slow, fails, fast])
    try:
        assert (won.value, won.index) == ("fast", 2)
        time.sleep(0.2)
        states = {i.id: i.state for i in client.instances.list(parent_id=source.id)}
        assert states[won.instance.id] == "ready"
        assert sorted(s for i, s in states.items() if i != won.instance.id and s != "stopped") == []
    finally:
        won.instance.stop()

    # Every function failing is one ParallelError carrying each error in order (as in TypeScript).
    def fails_too(child: Instance) -> str:
        raise KeyError("b")

    with pytest.raises(ParallelError) as caught:
        client.parallel.race(source, [fails, fails_too])
    assert caught.value.code == "parallel_failed"
    assert [type(e) for e in caught.value.errors] == [ValueError, KeyError]


def test_pool_bounds_concurrency(client: FaaSClient) -> None:
    running = 0
    peak = 0
    lock = threading.Lock()

    def task(n: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.1)
        with lock:
            running -= 1
        return n

    assert client.parallel.pool(2, [lambda n=n: task(n) for n in range(6)]) == list(range(6))  # type: ignore[misc]
    assert peak == 2


def test_branch_from_snapshot(client: FaaSClient, base_snapshot: Snapshot) -> None:
    branch = client.branch(base_snapshot.id)
    try:
        assert branch.head == base_snapshot.id and branch.name == branch.id and branch.instance_id is None
        with branch.checkout() as instance:
            assert instance.snapshot_id == base_snapshot.id and instance.state == "ready"
    finally:
        branch.delete()


async def test_async_parallel(aclient: AsyncFaaSClient, base_snapshot: Snapshot) -> None:
    async with aclient.instances.start(base_snapshot.id) as parent:
        async def run(n: int, child: Instance) -> str:
            return (await aclient.exec(f"echo {n}", child)).stdout

        assert await aclient.parallel.map([1, 2], run, source=parent) == ["1\n", "2\n"]

        async def slow(child: Instance) -> str:
            await aclient.exec("sleep 3", child)
            return "slow"

        async def fast(child: Instance) -> str:
            return "fast"

        won = await aclient.parallel.race(parent, [slow, fast])
        assert won.value == "fast"
        await aclient.instances.stop(won.instance)
        assert await aclient.parallel.all(parent, [fast, fast]) == ["fast", "fast"]

        async def value(n: int) -> int:
            return n

        assert await aclient.parallel.pool(2, [lambda n=n: value(n) for n in range(4)]) == [0, 1, 2, 3]  # type: ignore[misc]
