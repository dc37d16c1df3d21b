"""Engine events: on/once/off handlers (both clients) and resuming with Last-Event-ID."""

from __future__ import annotations

import asyncio
import threading

import pytest

from faas_sdk import AsyncFaaSClient, Event, FaaSClient, Snapshot, UnauthorizedError
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
        client.events.connected(timeout=15)  # on() returns at once; this waits for the subscription

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
    await aclient.events.connected(timeout=15)
    first = await aclient.instances.start(base_snapshot.id)
    second = await aclient.instances.start(base_snapshot.id)
    event = await asyncio.wait_for(got.get(), 10)
    assert event.resource_id == first.id and event.type == "instance.ready"
    await aclient.instances.stop(first)
    await aclient.instances.stop(second)
    await asyncio.sleep(0.2)
    assert got.empty()


def test_listener_stops_on_401_and_reports_it(engine: Engine) -> None:
    """A refused key is not retried forever: the listener stops, "error" handlers get the error and
    connected() raises it at once (a regression test: it used to reconnect every 0.5 s for ever)."""
    with FaaSClient(api_key="not-a-key", endpoint=engine.endpoint, max_retries=0) as client:
        errors: list[BaseException] = []
        client.events.on("error", errors.append)
        client.events.on("instance.ready", lambda _event: None)  # returns at once, no 15 s wait
        with pytest.raises(UnauthorizedError):
            client.events.connected(timeout=30)
        assert len(errors) == 1 and isinstance(errors[0], UnauthorizedError)
        assert client.events._thread is not None and not client.events._thread.is_alive()


async def test_async_listener_stops_on_401(engine: Engine) -> None:
    async with AsyncFaaSClient(api_key="not-a-key", endpoint=engine.endpoint, max_retries=0) as client:
        await client.events.on("instance.ready", lambda _event: None)
        with pytest.raises(UnauthorizedError):
            await client.events.connected(timeout=30)
