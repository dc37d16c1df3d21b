"""Engine events (``instance.ready``, ``snapshot.created``, …) over the SSE route.

``stream()`` is one connection you iterate. ``on/once/off`` register handlers served by one
background listener per client (a daemon thread, or an asyncio task): it subscribes to every
event type, dispatches by ``type`` (``"*"`` receives all), and when the connection drops it
reconnects with ``Last-Event-ID`` so no event is skipped (as far as the engine still has them).
``on`` returns once the listener is connected, so an action taken after it is always seen.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Iterator, Sequence

from .._base_client import APIRequest, drop_none
from .._sse import SSEDecoder
from ..types import Event
from ._resource import AsyncAPIResource, SyncAPIResource

if TYPE_CHECKING:
    import httpx

Handler = Callable[[Event], Any]
WILDCARD = "*"
#: Without traffic the engine sends a keepalive every 15 s; after this long with nothing at all
#: the connection is presumed dead and replaced (resuming from the last event seen).
READ_TIMEOUT = 45.0
RECONNECT_DELAY = 0.5
CONNECT_WAIT = 15.0


def _stream_request(types: Sequence[str] | None, resource_id: str | None, last_event_id: int | None) -> APIRequest:
    params = drop_none({"types": ",".join(types) if types else None, "resourceId": resource_id})
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    return APIRequest("GET", "/v1/events", params=params, headers=headers, timeout=READ_TIMEOUT)


@dataclass
class _Registration:
    event_type: str
    handler: Handler
    once: bool


class _HandlerTable:
    """Who wants which event type. Thread-safe; shared logic of both listeners."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._registrations: list[_Registration] = []

    def add(self, event_type: str, handler: Handler, once: bool) -> None:
        with self._lock:
            self._registrations.append(_Registration(event_type, handler, once))

    def remove(self, event_type: str, handler: Handler | None) -> None:
        with self._lock:
            self._registrations = [
                r for r in self._registrations
                if not (r.event_type == event_type and (handler is None or r.handler == handler))
            ]

    def take(self, event: Event) -> list[Handler]:
        """Handlers for ``event``; ``once`` registrations are removed as they are taken."""
        with self._lock:
            matched = [r for r in self._registrations if r.event_type in (event.type, WILDCARD)]
            self._registrations = [r for r in self._registrations if not (r.once and r in matched)]
        return [r.handler for r in matched]


def _parse_event(line_event: Any) -> Event:
    return Event.model_validate(line_event.json())


class Events(SyncAPIResource):
    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self._handlers = _HandlerTable()
        self._thread: threading.Thread | None = None
        self._connected = threading.Event()
        self._closed = threading.Event()
        self._response: httpx.Response | None = None
        self._last_seq: int | None = None

    def stream(
        self, *, types: Sequence[str] | None = None, resource_id: str | None = None, last_event_id: int | None = None
    ) -> Iterator[Event]:
        """Events from now on (or after ``last_event_id``), on one connection, until you stop."""
        with self._client._stream(_stream_request(types, resource_id, last_event_id)) as response:
            decoder = SSEDecoder()
            for line in response.iter_lines():
                sse = decoder.feed(line)
                if sse is not None:
                    yield _parse_event(sse)

    def on(self, event_type: str, handler: Handler) -> None:
        self._handlers.add(event_type, handler, once=False)
        self._ensure_listening()

    def once(self, event_type: str, handler: Handler) -> None:
        self._handlers.add(event_type, handler, once=True)
        self._ensure_listening()

    def off(self, event_type: str, handler: Handler | None = None) -> None:
        """Removes ``handler`` (every handler of ``event_type`` when None)."""
        self._handlers.remove(event_type, handler)

    def close(self) -> None:
        self._closed.set()
        response = self._response
        if response is not None:
            try:
                response.close()
            except Exception:  # the listener may be mid-read; it notices _closed and exits
                pass
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _ensure_listening(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._listen, name="faas-events", daemon=True)
            self._thread.start()
        if not self._connected.wait(CONNECT_WAIT):
            raise TimeoutError("could not subscribe to engine events")

    def _listen(self) -> None:
        while not self._closed.is_set():
            try:
                with self._client._stream(_stream_request(None, None, self._last_seq)) as response:
                    self._response = response
                    decoder = SSEDecoder()
                    for line in response.iter_lines():
                        # The engine's first line (": connected") comes once it is subscribed.
                        self._connected.set()
                        sse = decoder.feed(line)
                        if sse is not None:
                            self._dispatch(_parse_event(sse))
            except Exception:
                if self._closed.is_set():
                    return
            time.sleep(RECONNECT_DELAY)

    def _dispatch(self, event: Event) -> None:
        self._last_seq = event.seq
        for handler in self._handlers.take(event):
            try:
                handler(event)
            except Exception:  # a failing handler must not stop delivery to the others
                pass


class AsyncEvents(AsyncAPIResource):
    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self._handlers = _HandlerTable()
        self._task: asyncio.Task[None] | None = None
        self._connected: asyncio.Event | None = None
        self._last_seq: int | None = None

    async def stream(
        self, *, types: Sequence[str] | None = None, resource_id: str | None = None, last_event_id: int | None = None
    ) -> AsyncIterator[Event]:
        async with self._client._stream(_stream_request(types, resource_id, last_event_id)) as response:
            decoder = SSEDecoder()
            async for line in response.aiter_lines():
                sse = decoder.feed(line)
                if sse is not None:
                    yield _parse_event(sse)

    async def on(self, event_type: str, handler: Handler) -> None:
        """``handler`` may be a plain function or a coroutine function."""
        self._handlers.add(event_type, handler, once=False)
        await self._ensure_listening()

    async def once(self, event_type: str, handler: Handler) -> None:
        self._handlers.add(event_type, handler, once=True)
        await self._ensure_listening()

    def off(self, event_type: str, handler: Handler | None = None) -> None:
        self._handlers.remove(event_type, handler)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None

    async def _ensure_listening(self) -> None:
        if self._task is None:
            self._connected = asyncio.Event()
            self._task = asyncio.create_task(self._listen(self._connected), name="faas-events")
        assert self._connected is not None
        await asyncio.wait_for(self._connected.wait(), CONNECT_WAIT)

    async def _listen(self, connected: asyncio.Event) -> None:
        while True:
            try:
                async with self._client._stream(_stream_request(None, None, self._last_seq)) as response:
                    decoder = SSEDecoder()
                    async for line in response.aiter_lines():
                        connected.set()  # the first line (": connected") follows the subscription
                        sse = decoder.feed(line)
                        if sse is not None:
                            await self._dispatch(_parse_event(sse))
            except asyncio.CancelledError:
                raise
            except Exception:
                pass
            await asyncio.sleep(RECONNECT_DELAY)

    async def _dispatch(self, event: Event) -> None:
        self._last_seq = event.seq
        for handler in self._handlers.take(event):
            try:
                outcome = handler(event)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                pass
