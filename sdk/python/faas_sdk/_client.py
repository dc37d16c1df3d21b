"""FaaSClient and AsyncFaaSClient.

Both inherit every decision from BaseClient; they differ only in how a request is sent, how the
retry loop sleeps and how the connection pool is closed. Resource objects (``client.instances``…)
are thin: they build an APIRequest and hand it to ``_call`` or ``_stream``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import threading
import time
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator, Literal, Mapping, Sequence, Union

import httpx

from ._base_client import APIRequest, BaseClient
from ._config import OptimizationHints
from ._bound import Branch, Instance, Snapshot
from ._exceptions import FaaSError
from .resources.keys import AsyncKeys, AsyncTokens, Keys, Tokens
from .resources.network import AsyncNetwork, Network
from .resources.ssh import AsyncSsh, AsyncSshKeys, Ssh, SshKeys
from .resources.branches import AsyncBranches, Branches
from .resources.events import AsyncEvents, Events
from .resources.execution import AsyncExecution, BatchCommand, Command, Execution
from .resources.files import AsyncFiles, Files
from .resources.images import AsyncImages, Images
from .resources.instances import AsyncInstances, Instances
from .resources.parallel import AsyncParallel, Parallel
from .resources.processes import AsyncProcesses, Processes
from .resources.snapshots import AsyncSnapshots, Snapshots
from .resources.state import AsyncState, State
from .resources.terminals import AsyncTerminals, Terminals
from .types import ExecutionResult, Health

__all__ = ["FaaSClient", "AsyncFaaSClient", "Target", "HttpMethod"]

#: An instance (object or ``inst_…`` id) or a snapshot (object or ``snap_…`` id).
Target = Union[str, Instance, Snapshot]
HttpMethod = Literal["GET", "POST", "PUT", "DELETE"]


class FaaSClient(BaseClient):
    """Blocking client. ``FaaSClient()`` reads FAAS_API_KEY / FAAS_ENDPOINT or the local engine's
    credentials.json; pass ``api_key=`` / ``endpoint=`` to override."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        endpoint: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        http_client: httpx.Client | None = None,
        token_provider: Callable[[], str] | None = None,
        use_session_tokens: bool = False,
        token_expires_in: int | None = None,
        optimization_hints: OptimizationHints | None = None,
    ) -> None:
        super().__init__(
            api_key=api_key, endpoint=endpoint, timeout=timeout, max_retries=max_retries,
            token_provider=token_provider, use_session_tokens=use_session_tokens, token_expires_in=token_expires_in,
            optimization_hints=optimization_hints,
        )
        self._session_lock = threading.Lock()
        self._http = http_client or httpx.Client()
        self.images = Images(self)
        self.snapshots = Snapshots(self)
        self.instances = Instances(self)
        self.branches = Branches(self)
        self.state = State(self)
        self.execution = Execution(self)
        self.files = Files(self)
        self.processes = Processes(self)
        self.terminals = Terminals(self)
        self.events = Events(self)
        self.parallel = Parallel(self)
        self.keys = Keys(self)
        #: SSH public keys that may log in through the engine's SSH gateway (owned by this client's key).
        self.ssh_keys = SshKeys(self)
        #: The SSH gateway: its host key, and ``connect(instance)`` for an SSHClient.
        self.ssh = Ssh(self)
        self.tokens = Tokens(self)
        self.network = Network(self)

    # ------------------------------------------------------------------ transport
    def _send(self, request: APIRequest) -> httpx.Response:
        """Sends with retries; returns a 2xx response (body unread when ``request.stream``)."""
        request = self._prepare(request)
        attempt = 0
        refreshed = False
        while True:
            try:
                response = self._http.send(self._build(self._http, request, self._bearer(request)), stream=True)
            except httpx.TransportError as exc:
                delay = self._delay_after_transport_error(request, attempt)
                if delay is None:
                    raise self._network_error(request, exc) from exc
                time.sleep(delay)
                attempt += 1
                continue
            if response.is_success:
                if not request.stream:
                    response.read()
                return response
            response.read()
            response.close()
            if response.status_code == 401 and self._refresh(self._status_error(response), request, refreshed):
                refreshed = True
                continue
            delay = self._delay_after_response(request, attempt, response)
            if delay is None:
                raise self._status_error(response)
            time.sleep(delay)
            attempt += 1

    def _bearer(self, request: APIRequest) -> str | None:
        """The session token to send (minting one when due); None: the API key."""
        if self._session is None or request.use_api_key:
            return None
        with self._session_lock:
            token = self._session.current()
            if token is None:
                started = self._session.started()
                token = self._session.store(self._call(self._token_request()), started)
            return token

    def _refresh(self, error: FaaSError, request: APIRequest, refreshed: bool) -> bool:
        """Once per call after a 401: a new session token, or the token_provider's new key."""
        kind = self._refresh_kind(error, request, refreshed)
        if kind == "session" and self._session is not None:
            self._session.invalidate()
            return True
        if kind == "provider" and self._token_provider is not None and request.content is None:
            self._set_api_key(str(self._token_provider()))
            return True
        return False

    def _call(self, request: APIRequest) -> Any:
        return self._json(self._send(request))

    @contextlib.contextmanager
    def _stream(self, request: APIRequest) -> Iterator[httpx.Response]:
        """A started stream; closing it (leaving the block) hangs up on the engine."""
        response = self._send(dataclasses.replace(request, stream=True))
        try:
            yield response
        except httpx.TransportError as exc:
            raise self._network_error(request, exc) from exc
        finally:
            response.close()

    def close(self) -> None:
        self.events.close()
        self._http.close()

    def __enter__(self) -> FaaSClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ conveniences
    def health(self) -> Health:
        return Health.model_validate(self._call(APIRequest("GET", "/v1/health")))

    def metrics(self) -> dict[str, Any]:
        """Engine-wide counts and usage (``GET /v1/metrics``), as TypeScript's ``client.metrics()``."""
        data: dict[str, Any] = self._call(APIRequest("GET", "/v1/metrics"))
        return data

    def raw(self, method: HttpMethod, path: str, body: Any = None, *, api_key: str | None = None) -> Any:
        """Escape hatch: any route, with the SDK's auth, errors and retries; returns parsed JSON."""
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        return self._call(APIRequest(method, path, json=body, headers=headers))

    def exec(self, command: Command, target: Target | None = None, **options: Any) -> ExecutionResult:
        """Runs ``command``. ``target``: an instance (runs there); a snapshot (runs in a throwaway
        instance of it); or None (the default root snapshot: your cached one, else a new boot). Without an instance
        the result's ``snapshot_id`` is a snapshot taken after the command, so you can continue
        from that state; the throwaway instance is deleted."""
        return self.execution.run(command, target, **options)

    def exec_batch(self, target: Target, commands: Sequence[Command | BatchCommand], **options: Any) -> list[ExecutionResult]:
        return self.execution.batch(target, commands, **options)

    def exec_script(self, target: Target, script: str, **options: Any) -> ExecutionResult:
        return self.execution.script(target, script, **options)

    def exec_with_snapshot(self, target: Target, command: Command, **options: Any) -> Snapshot:
        return self.execution.with_snapshot(target, command, **options)

    def branch(
        self, snapshot_id: str | Snapshot | None = None, *, name: str | None = None, metadata: Mapping[str, str] | None = None
    ) -> Branch:
        """A new Branch at ``snapshot_id`` (a fresh root snapshot of the default image when None);
        see :class:`faas_sdk.resources.branches.Branches`."""
        at: str | Snapshot = snapshot_id if snapshot_id is not None else self.snapshots.create()
        return self.branches.create(at, name=name, metadata=metadata)


class AsyncFaaSClient(BaseClient):
    """asyncio client; every method mirrors :class:`FaaSClient` and is awaited."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        endpoint: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        http_client: httpx.AsyncClient | None = None,
        token_provider: Callable[[], str | Awaitable[str]] | None = None,
        use_session_tokens: bool = False,
        token_expires_in: int | None = None,
        optimization_hints: OptimizationHints | None = None,
    ) -> None:
        super().__init__(
            api_key=api_key, endpoint=endpoint, timeout=timeout, max_retries=max_retries,
            token_provider=token_provider, use_session_tokens=use_session_tokens, token_expires_in=token_expires_in,
            optimization_hints=optimization_hints,
        )
        self._session_lock = asyncio.Lock()
        self._http = http_client or httpx.AsyncClient()
        self.images = AsyncImages(self)
        self.snapshots = AsyncSnapshots(self)
        self.instances = AsyncInstances(self)
        self.branches = AsyncBranches(self)
        self.state = AsyncState(self)
        self.execution = AsyncExecution(self)
        self.files = AsyncFiles(self)
        self.processes = AsyncProcesses(self)
        self.terminals = AsyncTerminals(self)
        self.events = AsyncEvents(self)
        self.parallel = AsyncParallel(self)
        self.keys = AsyncKeys(self)
        self.ssh_keys = AsyncSshKeys(self)
        self.ssh = AsyncSsh(self)
        self.tokens = AsyncTokens(self)
        self.network = AsyncNetwork(self)

    async def _send(self, request: APIRequest) -> httpx.Response:
        request = self._prepare(request)
        attempt = 0
        refreshed = False
        while True:
            try:
                response = await self._http.send(self._build(self._http, request, await self._bearer(request)), stream=True)
            except httpx.TransportError as exc:
                delay = self._delay_after_transport_error(request, attempt)
                if delay is None:
                    raise self._network_error(request, exc) from exc
                await asyncio.sleep(delay)
                attempt += 1
                continue
            if response.is_success:
                if not request.stream:
                    await response.aread()
                return response
            await response.aread()
            await response.aclose()
            if response.status_code == 401 and await self._refresh(self._status_error(response), request, refreshed):
                refreshed = True
                continue
            delay = self._delay_after_response(request, attempt, response)
            if delay is None:
                raise self._status_error(response)
            await asyncio.sleep(delay)
            attempt += 1

    async def _bearer(self, request: APIRequest) -> str | None:
        if self._session is None or request.use_api_key:
            return None
        async with self._session_lock:
            token = self._session.current()
            if token is None:
                started = self._session.started()
                token = self._session.store(await self._call(self._token_request()), started)
            return token

    async def _refresh(self, error: FaaSError, request: APIRequest, refreshed: bool) -> bool:
        kind = self._refresh_kind(error, request, refreshed)
        if kind == "session" and self._session is not None:
            self._session.invalidate()
            return True
        if kind == "provider" and self._token_provider is not None and request.content is None:
            fresh = self._token_provider()
            self._set_api_key(str(await fresh if inspect.isawaitable(fresh) else fresh))
            return True
        return False

    async def _call(self, request: APIRequest) -> Any:
        return self._json(await self._send(request))

    @contextlib.asynccontextmanager
    async def _stream(self, request: APIRequest) -> AsyncIterator[httpx.Response]:
        response = await self._send(dataclasses.replace(request, stream=True))
        try:
            yield response
        except httpx.TransportError as exc:
            raise self._network_error(request, exc) from exc
        finally:
            await response.aclose()

    async def close(self) -> None:
        await self.events.close()
        await self._http.aclose()

    async def __aenter__(self) -> AsyncFaaSClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def metrics(self) -> dict[str, Any]:
        """Engine-wide counts and usage (``GET /v1/metrics``)."""
        data: dict[str, Any] = await self._call(APIRequest("GET", "/v1/metrics"))
        return data

    async def health(self) -> Health:
        return Health.model_validate(await self._call(APIRequest("GET", "/v1/health")))

    async def raw(self, method: HttpMethod, path: str, body: Any = None, *, api_key: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        return await self._call(APIRequest(method, path, json=body, headers=headers))

    async def exec(self, command: Command, target: Target | None = None, **options: Any) -> ExecutionResult:
        return await self.execution.run(command, target, **options)

    async def exec_batch(self, target: Target, commands: Sequence[Command | BatchCommand], **options: Any) -> list[ExecutionResult]:
        return await self.execution.batch(target, commands, **options)

    async def exec_script(self, target: Target, script: str, **options: Any) -> ExecutionResult:
        return await self.execution.script(target, script, **options)

    async def exec_with_snapshot(self, target: Target, command: Command, **options: Any) -> Snapshot:
        return await self.execution.with_snapshot(target, command, **options)

    async def branch(
        self, snapshot_id: str | Snapshot | None = None, *, name: str | None = None, metadata: Mapping[str, str] | None = None
    ) -> Branch:
        at: str | Snapshot = snapshot_id if snapshot_id is not None else await self.snapshots.create()
        return await self.branches.create(at, name=name, metadata=metadata)

