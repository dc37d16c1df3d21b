"""Background processes: start one and get a handle to wait for, signal, feed stdin and read its
output (buffered, then live). Output streams can be re-attached with ``since=<seq>``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, AsyncIterator, Iterator

from .._base_client import APIRequest, drop_none
from .._exceptions import NetworkError
from .._ids import IdRef, id_of
from .._sse import SSEDecoder, ServerSentEvent
from ..types import ProcessInfo, ProcessOutput
from ._commands import Command, command_body, to_millis
from ._resource import AsyncAPIResource, SyncAPIResource

if TYPE_CHECKING:
    from .._client import AsyncFaaSClient, FaaSClient

Signal = str | int


def _base(instance: IdRef, pid: int | None = None) -> str:
    path = f"/v1/instances/{id_of(instance)}/processes"
    return path if pid is None else f"{path}/{pid}"


def _start_request(instance: IdRef, command: Command, tag: str | None, options: dict[str, Any]) -> APIRequest:
    body = command_body(command, **options)
    if tag is not None:
        body["tag"] = tag
    return APIRequest("POST", _base(instance), json=body)


def _wait_request(instance: IdRef, pid: int, timeout: float | None) -> APIRequest:
    params = drop_none({"timeout": to_millis(timeout) if timeout is not None else None})
    # Without a timeout the engine waits for the exit, however long: so does the HTTP request.
    http_timeout = 24 * 3600.0 if timeout is None else timeout + 10
    return APIRequest("POST", f"{_base(instance, pid)}/wait", params=params, timeout=http_timeout)


def _stdin_request(instance: IdRef, pid: int, data: str | bytes) -> APIRequest:
    payload = data.encode() if isinstance(data, str) else data
    headers = {"Content-Type": "application/octet-stream"}
    # Never retried: a repeat could deliver the data twice (raw bodies skip the engine's idempotency store).
    return APIRequest("POST", f"{_base(instance, pid)}/stdin", content=lambda: payload, headers=headers, idempotent=False)


def _signal_request(instance: IdRef, pid: int, signal: Signal) -> APIRequest:
    return APIRequest("POST", f"{_base(instance, pid)}/signal", json={"signal": signal})


def _output_request(instance: IdRef, pid: int, follow: bool, since: int) -> APIRequest:
    # A followed stream lasts as long as the process: no read timeout.
    return APIRequest("GET", f"{_base(instance, pid)}/output", params={"follow": follow, "since": since}, timeout=24 * 3600.0)


def _output_event(sse: ServerSentEvent) -> ProcessOutput:
    if sse.event not in ("stdout", "stderr", "dropped", "exit"):
        raise NetworkError(f"unexpected process output event {sse.event!r}", code="network_error")
    return ProcessOutput.model_validate({**(sse.json() or {}), "type": sse.event})


class ProcessHandle:
    """A background process in an instance (blocking client)."""

    def __init__(self, client: FaaSClient, instance_id: str, info: ProcessInfo) -> None:
        self._client = client
        self.instance_id = instance_id
        self.info = info

    @property
    def pid(self) -> int:
        return self.info.pid

    def refresh(self) -> ProcessInfo:
        self.info = ProcessInfo.model_validate(self._client._call(APIRequest("GET", _base(self.instance_id, self.pid))))
        return self.info

    def wait(self, timeout: float | None = None) -> ProcessInfo:
        """Blocks until the process exits (``FaaSTimeoutError`` after ``timeout`` seconds)."""
        self.info = ProcessInfo.model_validate(self._client._call(_wait_request(self.instance_id, self.pid, timeout)))
        return self.info

    def signal(self, signal: Signal) -> None:
        self._client._call(_signal_request(self.instance_id, self.pid, signal))

    def kill(self, signal: Signal = "SIGKILL") -> None:
        self.signal(signal)

    def send_stdin(self, data: str | bytes) -> None:
        self._client._call(_stdin_request(self.instance_id, self.pid, data))

    def close_stdin(self) -> None:
        self._client._call(APIRequest("POST", f"{_base(self.instance_id, self.pid)}/stdin/close"))

    def output(self, *, follow: bool = True, since: int = 0) -> Iterator[ProcessOutput]:
        """Chunks after ``since`` (buffered first), then live ones with ``follow``, then ``exit``."""
        with self._client._stream(_output_request(self.instance_id, self.pid, follow, since)) as response:
            decoder = SSEDecoder()
            for line in response.iter_lines():
                sse = decoder.feed(line)
                if sse is not None:
                    yield _output_event(sse)


class AsyncProcessHandle:
    """A background process in an instance (async client)."""

    def __init__(self, client: AsyncFaaSClient, instance_id: str, info: ProcessInfo) -> None:
        self._client = client
        self.instance_id = instance_id
        self.info = info

    @property
    def pid(self) -> int:
        return self.info.pid

    async def refresh(self) -> ProcessInfo:
        self.info = ProcessInfo.model_validate(await self._client._call(APIRequest("GET", _base(self.instance_id, self.pid))))
        return self.info

    async def wait(self, timeout: float | None = None) -> ProcessInfo:
        self.info = ProcessInfo.model_validate(await self._client._call(_wait_request(self.instance_id, self.pid, timeout)))
        return self.info

    async def signal(self, signal: Signal) -> None:
        await self._client._call(_signal_request(self.instance_id, self.pid, signal))

    async def kill(self, signal: Signal = "SIGKILL") -> None:
        await self.signal(signal)

    async def send_stdin(self, data: str | bytes) -> None:
        await self._client._call(_stdin_request(self.instance_id, self.pid, data))

    async def close_stdin(self) -> None:
        await self._client._call(APIRequest("POST", f"{_base(self.instance_id, self.pid)}/stdin/close"))

    async def output(self, *, follow: bool = True, since: int = 0) -> AsyncIterator[ProcessOutput]:
        async with self._client._stream(_output_request(self.instance_id, self.pid, follow, since)) as response:
            decoder = SSEDecoder()
            async for line in response.aiter_lines():
                sse = decoder.feed(line)
                if sse is not None:
                    yield _output_event(sse)


class Processes(SyncAPIResource):
    def start(self, target: IdRef, command: Command, *, tag: str | None = None, **options: Any) -> ProcessHandle:
        """Starts ``command`` in the background. Options: ``cwd``, ``env``, ``user``, ``stdin``
        (initial input; stdin stays open), ``timeout`` (seconds; none by default)."""
        info = ProcessInfo.model_validate(self._client._call(_start_request(target, command, tag, options)))
        return ProcessHandle(self._client, id_of(target), info)

    def list(self, target: IdRef) -> list[ProcessInfo]:
        data = self._client._call(APIRequest("GET", _base(target)))
        return [ProcessInfo.model_validate(item) for item in data.get("data", [])]

    def get(self, target: IdRef, pid: int) -> ProcessHandle:
        """A handle to an existing process (e.g. to re-attach to its output)."""
        info = ProcessInfo.model_validate(self._client._call(APIRequest("GET", _base(target, pid))))
        return ProcessHandle(self._client, id_of(target), info)

    # By pid, without a handle — TypeScript's ``processes.info/wait/signal/writeStdin/closeStdin/output``.
    def info(self, target: IdRef, pid: int) -> ProcessInfo:
        return ProcessInfo.model_validate(self._client._call(APIRequest("GET", _base(target, pid))))

    def wait(self, target: IdRef, pid: int, timeout: float | None = None) -> ProcessInfo:
        return ProcessInfo.model_validate(self._client._call(_wait_request(target, pid, timeout)))

    def signal(self, target: IdRef, pid: int, signal: Signal) -> None:
        self._client._call(_signal_request(target, pid, signal))

    def write_stdin(self, target: IdRef, pid: int, data: str | bytes) -> None:
        """Never retried (a repeat could deliver the data twice)."""
        self._client._call(_stdin_request(target, pid, data))

    def close_stdin(self, target: IdRef, pid: int) -> None:
        self._client._call(APIRequest("POST", f"{_base(target, pid)}/stdin/close"))

    def output(self, target: IdRef, pid: int, *, follow: bool = True, since: int = 0) -> Iterator[ProcessOutput]:
        with self._client._stream(_output_request(target, pid, follow, since)) as response:
            decoder = SSEDecoder()
            for line in response.iter_lines():
                sse = decoder.feed(line)
                if sse is not None:
                    yield _output_event(sse)


class AsyncProcesses(AsyncAPIResource):
    async def start(self, target: IdRef, command: Command, *, tag: str | None = None, **options: Any) -> AsyncProcessHandle:
        info = ProcessInfo.model_validate(await self._client._call(_start_request(target, command, tag, options)))
        return AsyncProcessHandle(self._client, id_of(target), info)

    async def list(self, target: IdRef) -> list[ProcessInfo]:
        data = await self._client._call(APIRequest("GET", _base(target)))
        return [ProcessInfo.model_validate(item) for item in data.get("data", [])]

    async def get(self, target: IdRef, pid: int) -> AsyncProcessHandle:
        info = ProcessInfo.model_validate(await self._client._call(APIRequest("GET", _base(target, pid))))
        return AsyncProcessHandle(self._client, id_of(target), info)

    async def info(self, target: IdRef, pid: int) -> ProcessInfo:
        return ProcessInfo.model_validate(await self._client._call(APIRequest("GET", _base(target, pid))))

    async def wait(self, target: IdRef, pid: int, timeout: float | None = None) -> ProcessInfo:
        return ProcessInfo.model_validate(await self._client._call(_wait_request(target, pid, timeout)))

    async def signal(self, target: IdRef, pid: int, signal: Signal) -> None:
        await self._client._call(_signal_request(target, pid, signal))

    async def write_stdin(self, target: IdRef, pid: int, data: str | bytes) -> None:
        await self._client._call(_stdin_request(target, pid, data))

    async def close_stdin(self, target: IdRef, pid: int) -> None:
        await self._client._call(APIRequest("POST", f"{_base(target, pid)}/stdin/close"))

    async def output(self, target: IdRef, pid: int, *, follow: bool = True, since: int = 0) -> AsyncIterator[ProcessOutput]:
        async with self._client._stream(_output_request(target, pid, follow, since)) as response:
            decoder = SSEDecoder()
            async for line in response.aiter_lines():
                sse = decoder.feed(line)
                if sse is not None:
                    yield _output_event(sse)
