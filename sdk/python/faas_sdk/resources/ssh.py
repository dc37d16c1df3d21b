"""SSH: public keys for the engine's SSH gateway, its host key, and SSHClient (the seed's SSH operations).

The client is built on asyncssh: asyncio-native (it serves :class:`AsyncSSHClient` as is), with an
SFTP client that keeps many requests in flight and copies trees recursively with modes, times and
symlinks kept (``put/get(recurse=True, preserve=True)``), which paramiko lacks. The sync
:class:`SSHClient` runs the same async code on a private event loop thread, so both behave alike.

It logs in as the instance id with the client's API key (or session token) as the password, or
with a private key registered through ``ssh_keys.add``; the gateway's host key is pinned to the
one the engine reports over the authenticated API (``GET /v1/ssh/host``).
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any, Coroutine, Generic, TypeVar

import asyncssh

from .._base_client import APIRequest, drop_none
from .._exceptions import FaaSError, NetworkError, SSHAuthenticationError, SSHError
from .._loop_thread import LoopThread
from .._ids import IdRef, id_of
from .._pagination import AsyncPager, SyncPager
from ..types import SshHost, SshKey, SSHExecResult
from ._resource import AsyncAPIResource, SyncAPIResource

if TYPE_CHECKING:
    from .._client import AsyncFaaSClient, FaaSClient

T = TypeVar("T")
C = TypeVar("C")

_HOST = APIRequest("GET", "/v1/ssh/host")
#: Stands for the SSH login when asking the client which credential to send (a session token when on).
_LOGIN = APIRequest("GET", "/v1/ssh/login")


def _add_request(public_key: str, name: str | None) -> APIRequest:
    return APIRequest("POST", "/v1/ssh-keys", json=drop_none({"publicKey": public_key, "name": name}))


def _list_request(page_size: int | None) -> APIRequest:
    return APIRequest("GET", "/v1/ssh-keys", params=drop_none({"limit": page_size}))


def _parse_key(item: Any) -> SshKey:
    return SshKey.model_validate(item)


class SshKeys(SyncAPIResource):
    def add(self, public_key: str, *, name: str | None = None) -> SshKey:
        """Registers an OpenSSH public key line (``ssh-ed25519 AAAA… comment``) for this client's API key."""
        return SshKey.model_validate(self._client._call(_add_request(public_key, name)))

    def list(self, *, page_size: int | None = None) -> SyncPager[SshKey]:
        """This API key's SSH keys (an admin key sees all), newest first."""
        return SyncPager(self._client, _list_request(page_size), _parse_key)

    def remove(self, key_id: str) -> None:
        self._client._call(APIRequest("DELETE", f"/v1/ssh-keys/{key_id}"))


class AsyncSshKeys(AsyncAPIResource):
    async def add(self, public_key: str, *, name: str | None = None) -> SshKey:
        return SshKey.model_validate(await self._client._call(_add_request(public_key, name)))

    def list(self, *, page_size: int | None = None) -> AsyncPager[SshKey]:
        return AsyncPager(self._client, _list_request(page_size), _parse_key)

    async def remove(self, key_id: str) -> None:
        await self._client._call(APIRequest("DELETE", f"/v1/ssh-keys/{key_id}"))


class Ssh(SyncAPIResource):
    def host(self) -> SshHost:
        """Where the gateway listens and its host key."""
        return SshHost.model_validate(self._client._call(_HOST))

    def connect(self, instance: IdRef, **options: Any) -> SSHClient:
        """A connected :class:`SSHClient` for ``instance`` (options as :class:`SSHClient`)."""
        client = SSHClient(self._client, **options)
        client.connect(instance)
        return client


class AsyncSsh(AsyncAPIResource):
    async def host(self) -> SshHost:
        return SshHost.model_validate(await self._client._call(_HOST))

    async def connect(self, instance: IdRef, **options: Any) -> AsyncSSHClient:
        client = AsyncSSHClient(self._client, **options)
        await client.connect(instance)
        return client


def _target(info: SshHost, endpoint: str, host: str | None) -> str:
    if not info.enabled:
        raise SSHError("the engine runs without its SSH gateway (FAAS_SSH_PORT=off)", code="ssh_error")
    if host:
        return host
    if info.host in ("0.0.0.0", "::"):
        from urllib.parse import urlsplit

        return urlsplit(endpoint).hostname or "127.0.0.1"
    return info.host


class _Session:
    """The asyncssh connection and everything done over it; pure async, no HTTP."""

    def __init__(self, conn: asyncssh.SSHClientConnection) -> None:
        self.conn = conn
        self._sftp: asyncssh.SFTPClient | None = None

    @classmethod
    async def open(
        cls, info: SshHost, host: str, username: str, password: str | None, private_key: Any, passphrase: str | None, timeout: float
    ) -> _Session:
        pinned = asyncssh.import_public_key(info.host_key.public_key)
        keys = [asyncssh.import_private_key(private_key, passphrase)] if private_key is not None else None
        try:
            conn = await asyncssh.connect(
                host,
                info.port,
                username=username,
                password=password,
                client_keys=keys,
                # Pin the gateway's host key to the one the engine reports over the authenticated API.
                known_hosts=([pinned], [], []),
                agent_path=None,
                config=[],
                preferred_auth="publickey" if keys else "password,keyboard-interactive",
                connect_timeout=timeout,
            )
        except asyncssh.PermissionDenied as exc:
            raise SSHAuthenticationError(f"the SSH gateway refused the credential for {username}", code="ssh_auth_failed") from exc
        except (OSError, asyncio.TimeoutError) as exc:
            raise NetworkError(f"cannot reach the SSH gateway at {host}:{info.port}: {exc}", code="network_error") from exc
        except asyncssh.Error as exc:
            raise SSHError(f"SSH connection failed: {exc}", code="ssh_error") from exc
        return cls(conn)

    async def sftp(self) -> asyncssh.SFTPClient:
        if self._sftp is None:
            try:
                self._sftp = await self.conn.start_sftp_client()
            except asyncssh.Error as exc:
                raise SSHError(f"SFTP is not available: {exc}", code="ssh_error") from exc
        return self._sftp

    async def exec(self, command: str) -> SSHExecResult:
        try:
            r = await self.conn.run(command, check=False, encoding=None)
        except asyncssh.Error as exc:
            raise SSHError(f"exec failed: {exc}", code="ssh_error") from exc
        stdout = (r.stdout or b"").decode("utf-8", "replace")  # type: ignore[union-attr]
        stderr = (r.stderr or b"").decode("utf-8", "replace")  # type: ignore[union-attr]
        signal = r.exit_signal[0] if r.exit_signal else None
        code = None if signal or r.exit_status is None or r.exit_status < 0 else r.exit_status
        # The gateway's refusals (another key's instance, a stopped one) arrive as 255 + a reason.
        if code == 255 and stderr.startswith("faas: "):
            raise SSHError(stderr.strip(), code="ssh_error")
        return SSHExecResult(stdout=stdout, stderr=stderr, exit_code=code, signal=f"SIG{signal}" if signal else None)

    async def transfer(self, direction: str, source: str, dest: str, tree: bool) -> None:
        sftp = await self.sftp()
        try:
            if not tree:
                await (sftp.put if direction == "put" else sftp.get)(source, dest, preserve=True)
                return
            # dest becomes the copy of source (created, or merged into when it exists), as in TypeScript.
            if direction == "put":
                entries = [os.path.join(source, n) for n in sorted(os.listdir(source))]
                if not await sftp.isdir(dest):
                    await sftp.mkdir(dest)
                if entries:
                    await sftp.put(entries, dest, recurse=True, preserve=True)
                await sftp.chmod(dest, os.stat(source).st_mode & 0o7777)
            else:
                names = [n for n in await sftp.listdir(source) if n not in (".", "..")]
                os.makedirs(dest, exist_ok=True)
                if names:
                    await sftp.get([f"{source.rstrip('/')}/{n}" for n in sorted(names)], dest, recurse=True, preserve=True)
                os.chmod(dest, ((await sftp.stat(source)).permissions or 0o755) & 0o7777)
        except (asyncssh.SFTPError, OSError) as exc:
            raise SSHError(f"{direction} {source} -> {dest}: {exc}", code="ssh_error") from exc

    async def shell(self, cols: int, rows: int, term: str) -> asyncssh.SSHClientProcess[bytes]:
        try:
            return await self.conn.create_process(term_type=term, term_size=(cols, rows), encoding=None)
        except asyncssh.Error as exc:
            raise SSHError(f"the gateway refused the shell: {exc}", code="ssh_error") from exc

    async def close(self) -> None:
        if self._sftp is not None:
            self._sftp.exit()
        self.conn.close()
        await self.conn.wait_closed()


class AsyncSSHShell:
    """An interactive shell on a PTY: ``write``, ``read``, ``resize``, ``signal``, ``wait``."""

    def __init__(self, process: asyncssh.SSHClientProcess[bytes]) -> None:
        self._process = process

    def write(self, data: str | bytes) -> None:
        self._process.stdin.write(data.encode() if isinstance(data, str) else data)

    async def read(self, n: int = 65536) -> bytes:
        """Output as it comes; b"" once the shell has ended."""
        return await self._process.stdout.read(n)

    def resize(self, cols: int, rows: int) -> None:
        self._process.change_terminal_size(cols, rows)

    def signal(self, name: str) -> None:
        """Sends a signal (``INT``, ``SIGTERM``…) to the shell's foreground process group."""
        self._process.send_signal(name.removeprefix("SIG"))

    async def wait(self) -> int | None:
        """Waits for the shell to exit; its exit status."""
        r = await self._process.wait(check=False)
        return r.exit_status if r.exit_status is not None and r.exit_status >= 0 else None

    def close(self) -> None:
        self._process.close()


class _SSHClientBase(Generic[C]):
    """What both clients hold: the FaaS client, the login options, the open session."""

    def __init__(
        self,
        client: C,
        *,
        private_key: str | bytes | None = None,
        passphrase: str | None = None,
        host: str | None = None,
        connect_timeout: float = 20.0,
    ) -> None:
        self._client = client
        self._options = (private_key, passphrase, host, connect_timeout)
        self._session: _Session | None = None

    def _open(self, info: SshHost, endpoint: str, instance: IdRef, password: str | None) -> Coroutine[Any, Any, _Session]:
        if self._session is not None:
            raise SSHError("already connected; call disconnect() first", code="ssh_error")
        private_key, passphrase, host, timeout = self._options
        target = _target(info, endpoint, host)
        return _Session.open(info, target, id_of(instance), password, private_key, passphrase, timeout)


class AsyncSSHClient(_SSHClientBase["AsyncFaaSClient"]):
    """SSH to an instance through the engine's gateway (asyncio)."""

    async def connect(self, instance: IdRef) -> None:
        info = SshHost.model_validate(await self._client._call(_HOST))
        password = None if self._options[0] is not None else (await self._client._bearer(_LOGIN) or self._client.api_key)
        self._session = await self._open(info, self._client.endpoint, instance, password)

    def _live(self) -> _Session:
        if self._session is None:
            raise SSHError("not connected; call connect(instance) first", code="ssh_error")
        return self._session

    async def exec_command(self, command: str) -> SSHExecResult:
        return await self._live().exec(command)

    async def put_file(self, local_path: str, remote_path: str) -> None:
        await self._live().transfer("put", local_path, remote_path, tree=False)

    async def get_file(self, remote_path: str, local_path: str) -> None:
        await self._live().transfer("get", remote_path, local_path, tree=False)

    async def put_directory(self, local_path: str, remote_path: str) -> None:
        await self._live().transfer("put", local_path, remote_path, tree=True)

    async def get_directory(self, remote_path: str, local_path: str) -> None:
        await self._live().transfer("get", remote_path, local_path, tree=True)

    async def create_shell(self, *, cols: int = 80, rows: int = 24, term: str = "xterm-256color") -> AsyncSSHShell:
        return AsyncSSHShell(await self._live().shell(cols, rows, term))

    async def disconnect(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def __aenter__(self) -> AsyncSSHClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.disconnect()


class SSHShell:
    """The sync twin of :class:`AsyncSSHShell`."""

    def __init__(self, shell: AsyncSSHShell, loop: LoopThread) -> None:
        self._shell = shell
        self._loop = loop

    def write(self, data: str | bytes) -> None:
        self._loop.loop.call_soon_threadsafe(self._shell.write, data)

    def read(self, n: int = 65536) -> bytes:
        return self._loop.run(self._shell.read(n))

    def resize(self, cols: int, rows: int) -> None:
        self._loop.loop.call_soon_threadsafe(self._shell.resize, cols, rows)

    def signal(self, name: str) -> None:
        self._loop.loop.call_soon_threadsafe(self._shell.signal, name)

    def wait(self) -> int | None:
        return self._loop.run(self._shell.wait())

    def close(self) -> None:
        self._loop.loop.call_soon_threadsafe(self._shell.close)


class SSHClient(_SSHClientBase["FaaSClient"]):
    """SSH to an instance through the engine's gateway (blocking calls)."""

    _loop: LoopThread | None = None

    def connect(self, instance: IdRef) -> None:
        info = SshHost.model_validate(self._client._call(_HOST))
        password = None if self._options[0] is not None else (self._client._bearer(_LOGIN) or self._client.api_key)
        opening = self._open(info, self._client.endpoint, instance, password)
        loop = LoopThread("faas-ssh")
        try:
            self._session = loop.run(opening)
        except FaaSError:
            loop.stop()
            raise
        self._loop = loop

    def _run(self, make: Any) -> Any:
        if self._session is None or self._loop is None:
            raise SSHError("not connected; call connect(instance) first", code="ssh_error")
        return self._loop.run(make(self._session))

    def exec_command(self, command: str) -> SSHExecResult:
        result: SSHExecResult = self._run(lambda s: s.exec(command))
        return result

    def put_file(self, local_path: str, remote_path: str) -> None:
        self._run(lambda s: s.transfer("put", local_path, remote_path, False))

    def get_file(self, remote_path: str, local_path: str) -> None:
        self._run(lambda s: s.transfer("get", remote_path, local_path, False))

    def put_directory(self, local_path: str, remote_path: str) -> None:
        self._run(lambda s: s.transfer("put", local_path, remote_path, True))

    def get_directory(self, remote_path: str, local_path: str) -> None:
        self._run(lambda s: s.transfer("get", remote_path, local_path, True))

    def create_shell(self, *, cols: int = 80, rows: int = 24, term: str = "xterm-256color") -> SSHShell:
        process = self._run(lambda s: s.shell(cols, rows, term))
        assert self._loop is not None
        return SSHShell(AsyncSSHShell(process), self._loop)

    def disconnect(self) -> None:
        session, loop = self._session, self._loop
        self._session = self._loop = None
        if session is not None and loop is not None:
            try:
                loop.run(session.close())
            finally:
                loop.stop()

    def __enter__(self) -> SSHClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.disconnect()
