"""Conformance vocabulary for port forwards and tunnels (tests/conformance/README.md): each call
opens the forward or tunnel, makes one real TCP exchange through it, and closes it again. Works
with the blocking and the asyncio client (the socket work runs in a thread either way)."""

from __future__ import annotations

import asyncio
import inspect
import socket
import socketserver
import threading
from typing import Any

from faas_sdk import AsyncFaaSClient, FaaSClient

Client = FaaSClient | AsyncFaaSClient


async def _maybe(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _round_trip(port: int, send: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(send.encode())
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


async def port_forward_call(client: Client, target: str, remote_port: int, send: str = "", local_port: int = 0) -> dict[str, Any]:
    forward = await _maybe(client.network.port_forward(target, local_port, remote_port))
    try:
        reply = await asyncio.to_thread(_round_trip, forward.local_port, send)
        return {"localPort": forward.local_port, "reply": reply}
    finally:
        await _maybe(forward.close())


async def create_tunnel_call(client: Client, target: str, remote_port: int, reply: str, command: str) -> Any:
    body = reply.encode()

    class Answer(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = self.request.recv(4096)
                if not chunk:
                    return
                head += chunk
            self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        tunnel = await _maybe(
            client.network.create_tunnel(target, direction="remote", remote_port=remote_port, local_port=server.server_address[1])
        )
        try:
            return await _maybe(client.exec(command, target))
        finally:
            await _maybe(tunnel.close())
    finally:
        server.shutdown()
        server.server_close()
