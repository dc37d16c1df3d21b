"""Exec streams: SSE events of ``POST …/exec/stream`` as ExecEvent objects.

Iterating sends the request (lazily, on the first event) and reads until ``exit``. Leaving the
loop early, closing the stream, or cancelling the task that reads it closes the connection, and
the engine then kills the command's process group. A started stream is never retried.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, AsyncGenerator, AsyncIterator, Callable, Generator, Iterator

from .._base_client import APIRequest
from .._exceptions import NetworkError, error_from_body
from .._sse import SSEDecoder, ServerSentEvent
from ..types import ExecEvent, ExecutionResult

if TYPE_CHECKING:
    from .._client import AsyncFaaSClient, FaaSClient

OutputCallback = Callable[[str], object]


def exec_event(sse: ServerSentEvent) -> ExecEvent:
    payload = sse.json()
    if sse.event == "error":
        raise error_from_body(payload)
    if sse.event not in ("start", "stdout", "stderr", "exit"):
        raise NetworkError(f"unexpected exec stream event {sse.event!r}", code="network_error")
    return ExecEvent.model_validate({**(payload or {}), "type": sse.event})


def _truncated_stream() -> NetworkError:
    return NetworkError("the exec stream ended before its exit event", code="network_error")


@dataclass
class ExecCollector:
    """Folds a stream's events into an ExecutionResult, calling the output callbacks on the way."""

    on_stdout: OutputCallback | None = None
    on_stderr: OutputCallback | None = None
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    exit: ExecEvent | None = None

    def feed(self, event: ExecEvent) -> None:
        if event.type == "stdout" and event.data is not None:
            self.stdout.append(event.data)
            if self.on_stdout is not None:
                self.on_stdout(event.data)
        elif event.type == "stderr" and event.data is not None:
            self.stderr.append(event.data)
            if self.on_stderr is not None:
                self.on_stderr(event.data)
        elif event.type == "exit":
            self.exit = event

    def result(self) -> ExecutionResult:
        if self.exit is None:
            raise _truncated_stream()
        return ExecutionResult(
            exit_code=self.exit.exit_code if self.exit.exit_code is not None else -1,
            signal=self.exit.signal,
            stdout="".join(self.stdout),
            stderr="".join(self.stderr),
            duration=self.exit.duration or 0,
            timed_out=bool(self.exit.timed_out),
        )


class ExecStream:
    """``for event in stream`` or ``with client.execution.stream(…) as stream``."""

    def __init__(self, client: FaaSClient, request: APIRequest) -> None:
        self._client = client
        self._request = request
        self._events = self._generate()

    def _generate(self) -> Generator[ExecEvent, None, None]:
        with self._client._stream(self._request) as response:
            decoder = SSEDecoder()
            for line in response.iter_lines():
                sse = decoder.feed(line)
                if sse is None:
                    continue
                event = exec_event(sse)
                yield event
                if event.type == "exit":
                    return
        raise _truncated_stream()

    def __iter__(self) -> Iterator[ExecEvent]:
        return self._events

    def __next__(self) -> ExecEvent:
        return next(self._events)

    def collect(self, on_stdout: OutputCallback | None = None, on_stderr: OutputCallback | None = None) -> ExecutionResult:
        collector = ExecCollector(on_stdout, on_stderr)
        with self:
            for event in self:
                collector.feed(event)
        return collector.result()

    def close(self) -> None:
        self._events.close()

    def __enter__(self) -> ExecStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncExecStream:
    """``async for event in stream`` or ``async with client.execution.stream(…) as stream``."""

    def __init__(self, client: AsyncFaaSClient, request: APIRequest) -> None:
        self._client = client
        self._request = request
        self._events = self._generate()

    async def _generate(self) -> AsyncGenerator[ExecEvent, None]:
        async with self._client._stream(self._request) as response:
            decoder = SSEDecoder()
            async for line in response.aiter_lines():
                sse = decoder.feed(line)
                if sse is None:
                    continue
                event = exec_event(sse)
                yield event
                if event.type == "exit":
                    return
        raise _truncated_stream()

    def __aiter__(self) -> AsyncIterator[ExecEvent]:
        return self._events

    async def __anext__(self) -> ExecEvent:
        return await self._events.__anext__()

    async def collect(
        self, on_stdout: OutputCallback | None = None, on_stderr: OutputCallback | None = None
    ) -> ExecutionResult:
        collector = ExecCollector(on_stdout, on_stderr)
        async with self:
            async for event in self:
                collector.feed(event)
        return collector.result()

    async def close(self) -> None:
        await self._events.aclose()

    async def __aenter__(self) -> AsyncExecStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
