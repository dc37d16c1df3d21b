"""Engine events: on/once/off handlers (both clients) and resuming with Last-Event-ID."""

from __future__ import annotations

import asyncio
import threading

from faas_sdk import AsyncFaaSClient, Event, FaaSClient, Snapshot
from .conftest import Engine


def test_on_once_off(engine: Engine, base_snapshot: Snapshot) -> None:
    with engine.sync_client() as client:
        ready: list[Event] = []
        first_stop: list[Event] = []
        stopped = threading.Event()
        two_ready = threading.Event()

        def on_ready(event: Event) -> None:
            ready.append(event)
            if len(ready) == 2:
                two_ready.set()

        client.events.on("instance.ready", on_ready)
        client.events.once("instance.stopped", first_stop.append)
        client.events.on("instance.stopped", lambda _event: stopped.set())

        one = client.instances.start(base_snapshot)
        one.stop()
        assert stopped.wait(10)
        two = client.instances.start(base_snapshot)
        assert two_ready.wait(10)  # events arrive asynchronously; unsubscribe after this one
        client.events.off("instance.ready")
        two.stop()
        three = client.instances.start(base_snapshot)
        three.stop()

        assert {e.resource_id for e in ready} >= {one.id, two.id} and three.id not in {e.resource_id for e in ready}
        assert [e.resource_id for e in first_stop] == [one.id]


def test_stream_resumes_after_last_event_id(client: FaaSClient, base_snapshot: Snapshot) -> None:
    events = client.events.stream(types=["instance.ready", "instance.stopped"])
    holder: list[Event] = []
    reader = threading.Thread(target=lambda: holder.extend(e for _, e in zip(range(2), events)), daemon=True)
    reader.start()
    # The stream starts with the next event; give the subscription a moment before acting.
    threading.Event().wait(0.5)
    instance = client.instances.start(base_snapshot)
    instance.stop()
    reader.join(10)
    assert [e.type for e in holder] == ["instance.ready", "instance.stopped"]
    replay = client.events.stream(last_event_id=holder[0].seq, resource_id=instance.id)
    assert next(iter(replay)).seq == holder[1].seq


async def test_async_on_and_once(aclient: AsyncFaaSClient, base_snapshot: Snapshot) -> None:
    got: asyncio.Queue[Event] = asyncio.Queue()

    async def on_ready(event: Event) -> None:
        await got.put(event)

    await aclient.events.once("instance.ready", on_ready)
    first = await aclient.instances.start(base_snapshot.id)
    second = await aclient.instances.start(base_snapshot.id)
    event = await asyncio.wait_for(got.get(), 10)
    assert event.resource_id == first.id and event.type == "instance.ready"
    await aclient.instances.stop(first)
    await aclient.instances.stop(second)
    await asyncio.sleep(0.2)
    assert got.empty()
