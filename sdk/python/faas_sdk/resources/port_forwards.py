"""Port forwards and tunnels (the seed's NetworkOperations.port_forward / create_tunnel).

Each TCP connection travels in its own WebSocket through the engine (spec/openapi.yaml, tag
``network``): binary messages carry the bytes, a text ``{"type":"end"}`` is a half-close (FIN),
close 1000 means both directions ended, close 4001 means the other side reset.

- ``port_forward``: a listener on 127.0.0.1; one WebSocket ``…/tcp/{port}`` per accepted connection.
- ``create_tunnel(direction="remote")``: WebSocket ``…/tunnels/{port}`` announces each connection
  made inside the instance; we connect to ``local_host:local_port`` and claim it with WebSocket
  ``…/tunnels/{port}/connections/{id}``.

One asyncio implementation serves both clients: the async classes run on the caller's loop, the
blocking ones run the same code on a private loop in a daemon thread (a listener has to keep
accepting while the caller's thread does other things).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from .._base_client import APIRequest
from .._exceptions import FaaSError, InvalidRequestError, NetworkError
from .._loop_thread import LoopThread
from .._ids import IdRef, id_of
from ._resource import AsyncAPIResource, SyncAPIResource
from .terminals import OPEN_TIMEOUT, _handshake_error

if TYPE_CHECKING:
    from .._base_client import BaseClient

T = TypeVar("T")
Bearer = Callable[[], Awaitable[str]]

CLOSE_RESET = 4001
_END = json.dumps({"type": "end"})
_CHUNK = 64 * 1024
#: Stands for the WebSocket when asking the client which credential to send (a session token when on).
_FORWARD = APIRequest("GET", "/v1/instances/tcp")


def _ws_base(client: BaseClient) -> str:
    return client.endpoint.replace("https://", "wss://", 1).replace("http://", "ws://", 1)


def _check_port(name: str, port: int, low: int) -> None:
    if not isinstance(port, int) or isinstance(port, bool) or not low <= port <= 65535:
        raise InvalidRequestError(f"{name} must be an integer from {low} to 65535, not {port!r}", code="invalid_request")


def _probe_request(instance_id: str, port: int) -> APIRequest:
    return APIRequest("GET", f"/v1/instances/{instance_id}/tcp/{port}")


async def _open(url: str, bearer: Bearer, protocol: str) -> ClientConnection:
    headers = {"Authorization": f"Bearer {await bearer()}"}
    try:
        return await ws_connect(url, additional_headers=headers, subprotocols=[Subprotocol(protocol)], open_timeout=OPEN_TIMEOUT)
    except (InvalidStatus, OSError, TimeoutError) as exc:
        raise _handshake_error(exc) from exc


def _reset(writer: asyncio.StreamWriter) -> None:
    """Closes the local connection with a reset (RST), as the TypeScript SDK's resetAndDestroy does.

    ``transport.abort()`` alone sends a FIN when nothing unread is left, and the client would take
    a failure in the instance for the server finishing its answer."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _pipe(ws: ClientConnection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Carries one TCP connection over ``ws`` until both directions end or either side fails."""
    failed = False

    async def up() -> None:  # local -> instance
        nonlocal failed
        try:
            while chunk := await reader.read(_CHUNK):
                await ws.send(chunk)  # waits while the WebSocket's buffer is full: back-pressure
            await ws.send(_END)
        except (ConnectionError, OSError):
            failed = True
            await ws.close(CLOSE_RESET)
        except ConnectionClosed:
            pass

    async def down() -> None:  # instance -> local
        nonlocal failed
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    writer.write(message)
                    await writer.drain()  # the WebSocket is not read while the local side lags
                elif json.loads(message).get("type") == "end" and writer.can_write_eof():
                    writer.write_eof()
        except (ConnectionError, OSError, ValueError):
            failed = True
        except ConnectionClosed:
            pass
        if ws.close_code not in (None, 1000):
            failed = True

    up_task = asyncio.ensure_future(up())
    try:
        await down()
    finally:
        # The WebSocket is closed: nothing more can go up (after a clean close both directions
        # had already ended).
        up_task.cancel()
        await asyncio.gather(up_task, return_exceptions=True)
        if failed:
            _reset(writer)  # a reset on the other side resets this one
        else:
            writer.close()
        await ws.close()


class _Carried:
    """The connections a forward or tunnel carries, so that close() can end them together."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()
        self.writers: set[asyncio.StreamWriter] = set()

    def run(self, coro: Coroutine[Any, Any, None], writer: asyncio.StreamWriter | None = None) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        if writer is not None:
            self.writers.add(writer)

        def done(t: asyncio.Task[None]) -> None:
            self.tasks.discard(t)
            if writer is not None:
                self.writers.discard(writer)

        task.add_done_callback(done)

    async def close(self) -> None:
        for writer in list(self.writers):
            writer.transport.abort()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class AsyncPortForward:
    """A listener on 127.0.0.1 whose connections reach a port of an instance.

    ``errors`` collects the failures of single connections (e.g. nothing listens any more); the
    local client of such a connection is reset.
    """

    local_host = "127.0.0.1"

    def __init__(self, server: asyncio.Server, instance_id: str, remote_port: int) -> None:
        self._server = server
        self._carried = _Carried()
        self.instance_id = instance_id
        self.remote_port = remote_port
        self.local_port: int = server.sockets[0].getsockname()[1]
        self.errors: list[FaaSError] = []

    @property
    def local_address(self) -> str:
        return f"{self.local_host}:{self.local_port}"

    @property
    def active_connections(self) -> int:
        return len(self._carried.tasks)

    async def close(self) -> None:
        """Stops listening and closes every connection it carries."""
        self._server.close()
        await self._carried.close()
        await self._server.wait_closed()

    async def __aenter__(self) -> AsyncPortForward:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def _port_forward(base: str, bearer: Bearer, instance_id: str, local_port: int, remote_port: int) -> AsyncPortForward:
    url = f"{base}/v1/instances/{instance_id}/tcp/{remote_port}"
    forward: AsyncPortForward

    async def carry(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            ws = await _open(url, bearer, "faas-tcp")
        except FaaSError as exc:
            forward.errors.append(exc)
            _reset(writer)
            return
        await _pipe(ws, reader, writer)

    def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        forward._carried.run(carry(reader, writer), writer)

    try:
        server = await asyncio.start_server(on_connect, "127.0.0.1", local_port)
    except OSError as exc:
        raise NetworkError(
            f"cannot listen on 127.0.0.1:{local_port}: {exc.strerror}; choose another local port, or 0 for any",
            code="local_port_unavailable",
        ) from exc
    forward = AsyncPortForward(server, instance_id, remote_port)
    return forward


class AsyncTunnel:
    """An open tunnel. ``direction`` ``remote``: code in the instance connecting to ``remote_port``
    reaches ``local_host:local_port`` here. ``local``: a port forward (see ``forward``)."""

    def __init__(
        self,
        direction: Literal["remote", "local"],
        instance_id: str,
        remote_port: int,
        local_host: str,
        local_port: int,
        control: ClientConnection | None = None,
        forward: AsyncPortForward | None = None,
    ) -> None:
        self.direction = direction
        self.instance_id = instance_id
        self.remote_port = remote_port
        self.local_host = local_host
        self.local_port = local_port
        self.forward = forward
        self.errors: list[FaaSError] = forward.errors if forward else []
        self._control = control
        self._carried = _Carried()
        self._announcer: asyncio.Task[None] | None = None

    async def close(self) -> None:
        """Stops the tunnel and closes the connections it carries."""
        if self.forward is not None:
            await self.forward.close()
            return
        if self._control is not None:
            await self._control.close()
        if self._announcer is not None:
            self._announcer.cancel()
            await asyncio.gather(self._announcer, return_exceptions=True)
        await self._carried.close()

    async def __aenter__(self) -> AsyncTunnel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def _remote_tunnel(base: str, bearer: Bearer, instance_id: str, remote_port: int, local_host: str, local_port: int) -> AsyncTunnel:
    url = f"{base}/v1/instances/{instance_id}/tunnels/{remote_port}"
    control = await _open(url, bearer, "faas-tunnel")
    tunnel = AsyncTunnel("remote", instance_id, remote_port, local_host, local_port, control=control)

    async def claim(connection_id: str) -> None:
        remote = asyncio.ensure_future(_open(f"{url}/connections/{connection_id}", bearer, "faas-tunnel"))
        try:
            reader, writer = await asyncio.open_connection(local_host, local_port)
        except OSError as exc:
            tunnel.errors.append(NetworkError(f"tunnel: cannot connect to {local_host}:{local_port}: {exc}", code="network_error"))
            with contextlib.suppress(FaaSError):
                await (await remote).close(CLOSE_RESET)
            return
        try:
            ws = await remote
        except FaaSError as exc:
            tunnel.errors.append(exc)
            _reset(writer)
            return
        tunnel._carried.writers.add(writer)
        await _pipe(ws, reader, writer)

    async def announce() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in control:
                try:
                    msg = json.loads(message)
                except ValueError:
                    continue
                if isinstance(msg, dict) and msg.get("type") == "connection" and isinstance(msg.get("id"), str):
                    tunnel._carried.run(claim(msg["id"]))

    tunnel._announcer = asyncio.ensure_future(announce())
    return tunnel


class AsyncPortForwards(AsyncAPIResource):
    """``client.network``: port_forward and create_tunnel (the HTTP services half lives beside it)."""

    async def _bearer(self) -> str:
        return await self._client._bearer(_FORWARD) or self._client.api_key

    async def port_forward(self, instance: IdRef, local_port: int, remote_port: int) -> AsyncPortForward:
        """Listens on 127.0.0.1:``local_port`` (0 = any; see ``local_port`` on the result) and
        carries each connection to ``remote_port`` in the instance. Asks the engine first, so a
        port where nothing listens raises NetworkError (``port_not_listening``) here."""
        _check_port("local_port", local_port, 0)
        _check_port("remote_port", remote_port, 1)
        await self._client._call(_probe_request(id_of(instance), remote_port))
        return await _port_forward(_ws_base(self._client), self._bearer, id_of(instance), local_port, remote_port)

    async def create_tunnel(
        self,
        instance: IdRef,
        *,
        direction: Literal["remote", "local"],
        remote_port: int,
        local_port: int,
        local_host: str = "127.0.0.1",
    ) -> AsyncTunnel:
        """A remote tunnel (``ssh -R``), or with ``direction="local"`` a port forward."""
        if direction == "local":
            forward = await self.port_forward(instance, local_port, remote_port)
            return AsyncTunnel("local", forward.instance_id, remote_port, forward.local_host, forward.local_port, forward=forward)
        if direction != "remote":
            raise InvalidRequestError(f"direction must be 'remote' or 'local', not {direction!r}", code="invalid_request")
        _check_port("remote_port", remote_port, 1)
        _check_port("local_port", local_port, 1)
        return await _remote_tunnel(_ws_base(self._client), self._bearer, id_of(instance), remote_port, local_host, local_port)


class _SyncHandle:
    """What the blocking PortForward and Tunnel share: their async twin, run on a private loop."""

    def __init__(self, inner: AsyncPortForward | AsyncTunnel, loop: LoopThread) -> None:
        self._inner = inner
        self._loop = loop
        self.instance_id = inner.instance_id
        self.local_host = inner.local_host
        self.local_port = inner.local_port
        self.remote_port = inner.remote_port
        self._closed = False

    @property
    def errors(self) -> list[FaaSError]:
        """Failures of single connections (their local clients were reset)."""
        return self._inner.errors

    def close(self) -> None:
        """Stops listening and closes every connection it carries."""
        if self._closed:
            return
        self._closed = True
        self._loop.run(self._inner.close())
        self._loop.stop()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class PortForward(_SyncHandle):
    """A port forward (blocking client). ``with client.network.port_forward(inst, 0, 80) as fwd:``."""

    _inner: AsyncPortForward

    @property
    def local_address(self) -> str:
        return self._inner.local_address

    @property
    def active_connections(self) -> int:
        return self._inner.active_connections

    def __enter__(self) -> PortForward:
        return self


class Tunnel(_SyncHandle):
    """A tunnel (blocking client); see :class:`AsyncTunnel`."""

    _inner: AsyncTunnel

    def __init__(self, inner: AsyncTunnel, loop: LoopThread) -> None:
        super().__init__(inner, loop)
        self.direction = inner.direction

    def __enter__(self) -> Tunnel:
        return self


class PortForwards(SyncAPIResource):
    """``client.network``: port_forward and create_tunnel (the HTTP services half lives beside it)."""

    def _bearer(self) -> Bearer:
        async def bearer() -> str:
            # The blocking client's session lock is a threading.Lock: safe from the loop's thread.
            return self._client._bearer(_FORWARD) or self._client.api_key

        return bearer

    def _start(self, make: Callable[[], Coroutine[Any, Any, T]]) -> tuple[T, LoopThread]:
        loop = LoopThread("faas-port-forward")
        try:
            return loop.run(make()), loop
        except BaseException:
            loop.stop()
            raise

    def port_forward(self, instance: IdRef, local_port: int, remote_port: int) -> PortForward:
        """See :meth:`AsyncPortForwards.port_forward`."""
        _check_port("local_port", local_port, 0)
        _check_port("remote_port", remote_port, 1)
        self._client._call(_probe_request(id_of(instance), remote_port))
        base, bearer = _ws_base(self._client), self._bearer()
        inner, loop = self._start(lambda: _port_forward(base, bearer, id_of(instance), local_port, remote_port))
        return PortForward(inner, loop)

    def create_tunnel(
        self,
        instance: IdRef,
        *,
        direction: Literal["remote", "local"],
        remote_port: int,
        local_port: int,
        local_host: str = "127.0.0.1",
    ) -> Tunnel:
        """See :meth:`AsyncPortForwards.create_tunnel`."""
        if direction == "local":
            forward = self.port_forward(instance, local_port, remote_port)
            inner = AsyncTunnel("local", forward.instance_id, remote_port, forward.local_host, forward.local_port, forward=forward._inner)
            return Tunnel(inner, forward._loop)
        if direction != "remote":
            raise InvalidRequestError(f"direction must be 'remote' or 'local', not {direction!r}", code="invalid_request")
        _check_port("remote_port", remote_port, 1)
        _check_port("local_port", local_port, 1)
        base, bearer = _ws_base(self._client), self._bearer()
        tunnel, loop = self._start(lambda: _remote_tunnel(base, bearer, id_of(instance), remote_port, local_host, local_port))
        return Tunnel(tunnel, loop)
