"""Engine events (``instance.ready``, ``snapshot.created``, …) over the SSE route.

``stream()`` is one connection you iterate. ``on/once/off`` register handlers served by one
background listener per client (a daemon thread, or an asyncio task): it subscribes to every
event type, dispatches by ``type`` (``"*"`` receives all), and when the connection drops it
reconnects with ``Last-Event-ID`` so no event is skipped (as far as the engine still has them).

The same behaviour as the TypeScript SDK (docs/sdk-behaviour.md): ``on`` returns at once (it
never waits for the connection; ``connected()`` does, so an action taken after it is always seen);
handlers of ``"error"`` receive connection errors; a network error or a transient answer (5xx, 429)
reconnects with backoff (0.5 s doubling up to 8 s), any other refusal (401, 403, …) stops the
listener for good — it is passed to the ``"error"`` handlers and raised by ``connected()``, and the
next ``on`` starts a new listener. The daemon thread never keeps the interpreter alive; ``close()``
ends it (TypeScript: the connection keeps Node alive until ``close()``).
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Iterator, Sequence

from .._base_client import APIRequest, drop_none
from .._exceptions import FaaSError, FaaSTimeoutError
from .._retry import RetryPolicy, is_retryable_status
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
#: Handlers of this pseudo type receive connection errors (as in TypeScript's ``on('error', …)``).
ERROR = "error"
#: Backoff steps stop doubling here (0.5 s * 2**4 = 8 s, the retry policy's ceiling).
MAX_BACKOFF_STEP = 4


def _is_fatal(error: BaseException) -> bool:
    """A refusal that reconnecting cannot fix (401, 403, 404 …); network errors and 5xx/429 are not."""
    if not isinstance(error, FaaSError) or error.status_code is None:
        return False
    return not is_retryable_status(error.status_code, error.code, error.details, None, 0)


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

    def has_event_handlers(self) -> bool:
        with self._lock:
            return any(r.event_type != ERROR for r in self._registrations)

    def error_handlers(self) -> list[Handler]:
        with self._lock:
            return [r.handler for r in self._registrations if r.event_type == ERROR]

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
        self._fatal: BaseException | None = None

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
        """Calls ``handler`` for each event of ``event_type`` (``"*"``: every event; ``"error"``:
        connection errors). Returns at once; ``connected()`` waits for the subscription."""
        self._handlers.add(event_type, handler, once=False)
        if event_type != ERROR:
            self._ensure_listening()

    def once(self, event_type: str, handler: Handler) -> None:
        self._handlers.add(event_type, handler, once=True)
        if event_type != ERROR:
            self._ensure_listening()

    def off(self, event_type: str, handler: Handler | None = None) -> None:
        """Removes ``handler`` (every handler of ``event_type`` when None); the listener closes
        with the last event handler, as in TypeScript."""
        self._handlers.remove(event_type, handler)
        if not self._handlers.has_event_handlers():
            self.close()

    def connected(self, timeout: float | None = None) -> None:
        """Returns once the background listener is subscribed (events from now on will be seen).
        Raises the error that stopped the listener (a 401/403 …), or FaaSTimeoutError after ``timeout`` s."""
        if self._thread is None:
            raise FaaSError("no event listener: register a handler with on() first", code="invalid_request")
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._connected.wait(0.05):
            if self._fatal is not None:
                raise self._fatal
            if deadline is not None and time.monotonic() >= deadline:
                raise FaaSTimeoutError(f"event listener not connected within {timeout} s", code="timeout")
        if self._fatal is not None:
            raise self._fatal

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
        self._thread = None

    def _ensure_listening(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._closed.clear()
            self._connected.clear()
            self._fatal = None
            self._thread = threading.Thread(target=self._listen, name="faas-events", daemon=True)
            self._thread.start()

    def _listen(self) -> None:
        failures = 0
        while not self._closed.is_set():
            try:
                with self._client._stream(_stream_request(None, None, self._last_seq)) as response:
                    self._response = response
                    failures = 0
                    decoder = SSEDecoder()
                    for line in response.iter_lines():
                        # The engine's first line (": connected") comes once it is subscribed.
                        self._connected.set()
                        sse = decoder.feed(line)
                        if sse is not None:
                            self._dispatch(_parse_event(sse))
            except Exception as error:
                if self._closed.is_set():
                    return
                self._connected.clear()
                self._report(error)
                if _is_fatal(error):
                    self._fatal = error
                    return
                failures += 1
            self._connected.clear()
            self._closed.wait(_BACKOFF.delay(min(failures, MAX_BACKOFF_STEP)))

    def _report(self, error: BaseException) -> None:
        for handler in self._handlers.error_handlers():
            try:
                handler(error)  # type: ignore[arg-type]
            except Exception:
                pass

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
        self._fatal: BaseException | None = None

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
        """``handler`` may be a plain function or a coroutine function. Returns at once; ``await
        connected()`` to wait for the subscription."""
        self._handlers.add(event_type, handler, once=False)
        if event_type != ERROR:
            await self._ensure_listening()

    async def once(self, event_type: str, handler: Handler) -> None:
        self._handlers.add(event_type, handler, once=True)
        if event_type != ERROR:
            await self._ensure_listening()

    def off(self, event_type: str, handler: Handler | None = None) -> None:
        """Removes ``handler``; the listener closes with the last event handler, as in TypeScript."""
        self._handlers.remove(event_type, handler)
        if not self._handlers.has_event_handlers() and self._task is not None:
            self._task.cancel()
            self._task = None

    async def connected(self, timeout: float | None = None) -> None:
        """Returns once the background listener is subscribed; raises the error that stopped it,
        or FaaSTimeoutError after ``timeout`` s."""
        if self._task is None or self._connected is None:
            raise FaaSError("no event listener: register a handler with on() first", code="invalid_request")
        waiter = asyncio.ensure_future(self._connected.wait())
        try:
            done, _ = await asyncio.wait({waiter, self._task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if self._task in done and self._fatal is not None:
            raise self._fatal
        if not done:
            raise FaaSTimeoutError(f"event listener not connected within {timeout} s", code="timeout")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None

    async def _ensure_listening(self) -> None:
        if self._task is None or self._task.done():
            self._connected = asyncio.Event()
            self._fatal = None
            self._task = asyncio.create_task(self._listen(self._connected), name="faas-events")

    async def _listen(self, connected: asyncio.Event) -> None:
        failures = 0
        while True:
            try:
                async with self._client._stream(_stream_request(None, None, self._last_seq)) as response:
                    failures = 0
                    decoder = SSEDecoder()
                    async for line in response.aiter_lines():
                        connected.set()  # the first line (": connected") follows the subscription
                        sse = decoder.feed(line)
                        if sse is not None:
                            await self._dispatch(_parse_event(sse))
            except asyncio.CancelledError:
                raise
            except Exception as error:
                connected.clear()
                await self._report(error)
                if _is_fatal(error):
                    self._fatal = error
                    return
                failures += 1
            connected.clear()
            await asyncio.sleep(_BACKOFF.delay(min(failures, MAX_BACKOFF_STEP)))

    async def _report(self, error: BaseException) -> None:
        for handler in self._handlers.error_handlers():
            try:
                outcome = handler(error)  # type: ignore[arg-type]
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                pass

    async def _dispatch(self, event: Event) -> None:
        self._last_seq = event.seq
        for handler in self._handlers.take(event):
            try:
                outcome = handler(event)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                pass


#: The reconnect backoff is the retry policy's (0.5 s doubling, jittered, up to 8 s).
_BACKOFF = RetryPolicy(max_retries=0)
