"""network.port_forward and network.create_tunnel with real TCP clients and servers: a server in a
real sandbox reached through the local listener (many connections, a large transfer checked by
sha256), typed errors, close() closing what it carries, and a remote tunnel reached by curl inside
the instance — with the blocking and the asyncio client."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import socketserver
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from faas_sdk import (
    AsyncFaaSClient,
    ConflictError,
    FaaSClient,
    Instance,
    InstanceNotFoundError,
    InvalidRequestError,
    NetworkError,
    Snapshot,
)

ECHO = """
import socketserver
class H(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            d = self.request.recv(65536)
            if not d: break
            self.request.sendall(d)
        self.request.shutdown(1)
socketserver.ThreadingTCPServer.allow_reuse_address = True
# gVisor resets connections beyond the listen backlog (Linux drops the SYN and the client retries);
# the default of 5 reset some of the 24 at once below (docs/network.md).
socketserver.ThreadingTCPServer.request_queue_size = 128
socketserver.ThreadingTCPServer.daemon_threads = True
socketserver.ThreadingTCPServer(("0.0.0.0", 8000), H).serve_forever()
"""


# Resets every connection once it has read a byte from it (SO_LINGER 0: RST instead of FIN).
RESET = """
import socket, struct
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8002))
s.listen(16)
while True:
    c, _ = s.accept()
    c.recv(1)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
"""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _echo(port: int, data: bytes) -> bytes:
    """Sends ``data``, half-closes, returns everything read back."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        def send() -> None:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send)
        sender.start()
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        sender.join()
    return b"".join(chunks)


def _start_server(client: FaaSClient, instance: Instance, script: str, port: int) -> None:
    name = f"/tmp/server{port}.py"
    client.files.write(instance, name, script)
    client.processes.start(instance, f"python3 {name}")
    for _ in range(100):
        try:
            client.network.port_forward(instance, 0, port).close()
            return
        except NetworkError:
            time.sleep(0.1)


def _start_echo(client: FaaSClient, instance: Instance) -> None:
    _start_server(client, instance, ECHO, 8000)


def test_port_forward_large_and_concurrent(client: FaaSClient, base_snapshot: Snapshot) -> None:
    with client.instances.start(base_snapshot) as instance:
        _start_echo(client, instance)
        with client.network.port_forward(instance, 0, 8000) as forward:
            assert forward.local_port > 0
            assert forward.local_address == f"127.0.0.1:{forward.local_port}"
            big = os.urandom(16 * 1024 * 1024)
            assert _sha(_echo(forward.local_port, big)) == _sha(big)
            small = [os.urandom(32 * 1024 + i) for i in range(24)]
            with ThreadPoolExecutor(24) as pool:
                back = list(pool.map(lambda d: _echo(forward.local_port, d), small))
            assert [_sha(b) for b in back] == [_sha(d) for d in small]


def test_port_forward_passes_a_reset_on(client: FaaSClient, base_snapshot: Snapshot) -> None:
    """A server in the instance that resets its connection resets the local client's too: the client
    must not take a failure for the server finishing its answer (an EOF)."""
    with client.instances.start(base_snapshot) as instance:
        _start_server(client, instance, RESET, 8002)
        with client.network.port_forward(instance, 0, 8002) as forward:
            with socket.create_connection(("127.0.0.1", forward.local_port), timeout=30) as sock:
                sock.sendall(b"x")
                with pytest.raises(ConnectionResetError):
                    sock.recv(10)


def test_port_forward_errors_and_close(client: FaaSClient, base_snapshot: Snapshot) -> None:
    with client.instances.start(base_snapshot) as instance:
        _start_echo(client, instance)
        with pytest.raises(NetworkError) as nothing:
            client.network.port_forward(instance, 0, 8001)
        assert nothing.value.code == "port_not_listening"
        with pytest.raises(InvalidRequestError):
            client.network.port_forward(instance, 0, 70000)
        with pytest.raises(InstanceNotFoundError):
            client.network.port_forward("inst_doesnotexist", 0, 8000)
        forward = client.network.port_forward(instance, 0, 8000)
        with pytest.raises(NetworkError) as taken:
            client.network.port_forward(instance, forward.local_port, 8000)
        assert taken.value.code == "local_port_unavailable"
        # close() ends a live connection and the listener.
        sock = socket.create_connection(("127.0.0.1", forward.local_port), timeout=10)
        sock.sendall(b"ping")
        assert sock.recv(10) == b"ping"
        forward.close()
        assert sock.recv(10) == b""  # closed (EOF or reset both end the read)
        sock.close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", forward.local_port), timeout=5)


class _Ok(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            data += chunk
        self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")


def test_remote_tunnel_sync(client: FaaSClient, base_snapshot: Snapshot) -> None:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with client.instances.start(base_snapshot) as instance:
            local_port = server.server_address[1]
            with client.network.create_tunnel(instance, direction="remote", remote_port=9100, local_port=local_port) as tunnel:
                assert tunnel.direction == "remote"
                result = instance.exec("for i in 1 2 3 4 5; do curl -s -m 10 http://127.0.0.1:9100/; done")
                assert result.stdout == "ok" * 5
                with pytest.raises(ConflictError):
                    client.network.create_tunnel(instance, direction="remote", remote_port=9100, local_port=local_port)
            after = instance.exec("curl -s -m 5 http://127.0.0.1:9100/")
            assert after.exit_code == 7  # connection refused: the tunnel is closed
    finally:
        server.shutdown()


async def test_async_port_forward_and_tunnel(aclient: AsyncFaaSClient, client: FaaSClient, base_snapshot: Snapshot) -> None:
    async with aclient.instances.start(base_snapshot.id) as instance:
        await asyncio.to_thread(_start_echo, client, client.instances.get(instance.id))
        async with await aclient.network.port_forward(instance, 0, 8000) as forward:
            data = os.urandom(4 * 1024 * 1024)
            reader, writer = await asyncio.open_connection("127.0.0.1", forward.local_port)
            writer.write(data)
            writer.write_eof()
            assert _sha(await reader.read()) == _sha(data)
            writer.close()

        async def ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nasync")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(ok, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with await aclient.network.create_tunnel(instance, direction="remote", remote_port=9200, local_port=port):
            result = await aclient.execution.run("curl -s -m 10 http://127.0.0.1:9200/", instance)
            assert result.stdout == "async"
        server.close()
        local = await aclient.network.create_tunnel(instance, direction="local", remote_port=8000, local_port=0)
        assert local.forward is not None and local.local_port > 0
        await local.close()
