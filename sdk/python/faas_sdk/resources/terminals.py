"""Interactive terminals over the engine's WebSocket route.

Binary frames carry terminal bytes both ways; text frames carry JSON control messages (``resize``
from us, ``exit`` from the engine, after which it closes the socket). Errors before the upgrade
are ordinary JSON error bodies and raise the usual FaaSError subclasses.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection as AsyncConnection
from websockets.asyncio.client import connect as async_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection as SyncConnection
from websockets.sync.client import connect as sync_connect

from .._base_client import APIRequest
from .._exceptions import FaaSError, NetworkError, error_from_body
from .._ids import IdRef, id_of
from ._resource import AsyncAPIResource, SyncAPIResource

if TYPE_CHECKING:
    from .._base_client import BaseClient

OPEN_TIMEOUT = 15.0


def _url(client: BaseClient, instance: IdRef, command: str | None, cols: int, rows: int) -> str:
    query: dict[str, Any] = {"cols": cols, "rows": rows}
    if command is not None:
        query["command"] = command
    base = client.endpoint.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    return f"{base}/v1/instances/{id_of(instance)}/terminal?{urlencode(query)}"


def _handshake_error(exc: Exception) -> FaaSError:
    if isinstance(exc, InvalidStatus):
        response = exc.response
        try:
            body: object = json.loads(response.body or b"")
        except ValueError:
            body = None
        return error_from_body(body, response.status_code, request_id=response.headers.get("X-Request-Id"))
    return NetworkError(f"terminal connection failed: {exc}", code="network_error")


def _control(message: str | bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(message)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _resize(cols: int, rows: int) -> str:
    return json.dumps({"type": "resize", "cols": cols, "rows": rows})


class _Output:
    """Pure bookkeeping shared by both terminals: collected output and the exit code."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.exit_code: int | None = None

    def take(self, message: str | bytes) -> bytes | None:
        """Returns output bytes, or None for a control message (recording ``exit``)."""
        if isinstance(message, bytes):
            self.buffer.extend(message)
            return message
        control = _control(message)
        if control.get("type") == "exit" and isinstance(control.get("exitCode"), int):
            self.exit_code = control["exitCode"]
        return None


class Terminal:
    """An open terminal (blocking). ``with client.terminals.open(inst) as term:``."""

    def __init__(self, connection: SyncConnection) -> None:
        self._connection = connection
        self._output = _Output()

    @property
    def exit_code(self) -> int | None:
        return self._output.exit_code

    @property
    def output(self) -> bytes:
        """Everything received so far."""
        return bytes(self._output.buffer)

    def send(self, data: str | bytes) -> None:
        self._connection.send(data.encode() if isinstance(data, str) else data)

    def resize(self, cols: int, rows: int) -> None:
        self._connection.send(_resize(cols, rows))

    def recv(self, timeout: float | None = None) -> bytes | None:
        """Next output bytes; None once the program has exited and the socket closed.
        Raises TimeoutError when nothing arrives within ``timeout`` seconds."""
        while True:
            try:
                message = self._connection.recv(timeout=timeout)
            except ConnectionClosed:
                return None
            chunk = self._output.take(message)
            if chunk is not None:
                return chunk

    def read_until(self, marker: str | bytes, timeout: float = 10.0) -> bytes:
        """Reads until ``marker`` appears in the output collected so far; returns all of it."""
        wanted = marker.encode() if isinstance(marker, str) else marker
        while wanted not in self._output.buffer:
            if self.recv(timeout=timeout) is None:
                break
        return self.output

    def wait(self, timeout: float = 30.0) -> int | None:
        """Drains output until the program exits; returns its exit code."""
        while self.recv(timeout=timeout) is not None:
            pass
        return self.exit_code

    def close(self) -> None:
        """Hangs up (the engine sends SIGHUP to the terminal's process group)."""
        self._connection.close()

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncTerminal:
    """An open terminal (asyncio). ``async with await client.terminals.open(inst) as term:``."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection
        self._output = _Output()

    @property
    def exit_code(self) -> int | None:
        return self._output.exit_code

    @property
    def output(self) -> bytes:
        return bytes(self._output.buffer)

    async def send(self, data: str | bytes) -> None:
        await self._connection.send(data.encode() if isinstance(data, str) else data)

    async def resize(self, cols: int, rows: int) -> None:
        await self._connection.send(_resize(cols, rows))

    async def recv(self) -> bytes | None:
        """Next output bytes; None once the program has exited. Wrap in ``asyncio.wait_for`` to bound it."""
        while True:
            try:
                message = await self._connection.recv()
            except ConnectionClosed:
                return None
            chunk = self._output.take(message)
            if chunk is not None:
                return chunk

    async def read_until(self, marker: str | bytes) -> bytes:
        wanted = marker.encode() if isinstance(marker, str) else marker
        while wanted not in self._output.buffer:
            if await self.recv() is None:
                break
        return self.output

    async def wait(self) -> int | None:
        while await self.recv() is not None:
            pass
        return self.exit_code

    async def close(self) -> None:
        await self._connection.close()

    async def __aenter__(self) -> AsyncTerminal:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


#: Stands for the WebSocket when asking the client which credential to send (a session token when on).
_TERMINAL = APIRequest("GET", "/v1/instances/terminal")


class Terminals(SyncAPIResource):
    def open(self, target: IdRef, *, command: str | None = None, cols: int = 80, rows: int = 24) -> Terminal:
        """Opens a terminal running ``command`` (the login shell when None)."""
        headers = {"Authorization": f"Bearer {self._client._bearer(_TERMINAL) or self._client.api_key}"}
        try:
            connection = sync_connect(
                _url(self._client, target, command, cols, rows), additional_headers=headers, open_timeout=OPEN_TIMEOUT
            )
        except (InvalidStatus, OSError, TimeoutError) as exc:
            raise _handshake_error(exc) from exc
        return Terminal(connection)


class AsyncTerminals(AsyncAPIResource):
    async def open(self, target: IdRef, *, command: str | None = None, cols: int = 80, rows: int = 24) -> AsyncTerminal:
        headers = {"Authorization": f"Bearer {await self._client._bearer(_TERMINAL) or self._client.api_key}"}
        try:
            connection = await async_connect(
                _url(self._client, target, command, cols, rows), additional_headers=headers, open_timeout=OPEN_TIMEOUT
            )
        except (InvalidStatus, OSError, TimeoutError) as exc:
            raise _handshake_error(exc) from exc
        return AsyncTerminal(connection)
