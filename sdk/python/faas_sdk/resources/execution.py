"""Running commands: one-shot exec, batches, scripts, exec + snapshot, and output streams.

Targets: an instance (object or ``inst_…`` id) runs the command in place. A snapshot (object or
``snap_…`` id) runs it in a throwaway instance of that snapshot: the instance is snapshotted
after the command (the result's ``snapshot_id``) and then deleted, so state is never lost and
nothing keeps running. ``client.exec(cmd)`` with no target does the same from a fresh root
snapshot of the default image.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Mapping, Sequence, TypeVar

from .._base_client import APIRequest, drop_none
from .._bound import Instance, Snapshot
from .._ids import IdRef, id_of, is_snapshot_id
from ..types import ExecutionResult
from ._commands import Command, command_body, request_timeout
from ._resource import AsyncAPIResource, SyncAPIResource
from ._streams import AsyncExecStream, ExecStream, OutputCallback

__all__ = ["BatchCommand", "Command", "Execution", "AsyncExecution"]

T = TypeVar("T")
Target = IdRef


def _exec_request(instance: IdRef, command: Command, options: Mapping[str, Any], timeout: float, *, snapshot: bool) -> APIRequest:
    body = command_body(command, **options)
    if snapshot:
        body["snapshot"] = True
    return APIRequest(
        "POST", f"/v1/instances/{id_of(instance)}/exec", json=body, timeout=request_timeout(options.get("timeout"), timeout)
    )


def _stream_request(instance: IdRef, command: Command, options: Mapping[str, Any], timeout: float) -> APIRequest:
    body = command_body(command, **options)
    return APIRequest(
        "POST", f"/v1/instances/{id_of(instance)}/exec/stream", json=body, timeout=request_timeout(options.get("timeout"), timeout)
    )


#: One command of a batch with its own options, as in TypeScript's ``ExecRequest`` items:
#: ``{"command": "make", "cwd": "/src", "env": {...}, "user": ..., "stdin": ..., "timeout": 60}``
#: (``command`` a shell line or an argv list; ``timeout`` in seconds like everywhere in Python).
BatchCommand = Mapping[str, Any]


def _batch_item(command: Command | BatchCommand) -> Any:
    if isinstance(command, str):
        return command
    if isinstance(command, Mapping):
        options = dict(command)
        return command_body(options.pop("command"), **options)
    return {"argv": list(command)}


def _batch_request(
    instance: IdRef,
    commands: Sequence[Command | BatchCommand],
    stop_on_error: bool,
    cwd: str | None,
    env: Mapping[str, str] | None,
    timeout: float,
) -> APIRequest:
    items = [_batch_item(c) for c in commands]
    body = drop_none({"commands": items, "stopOnError": stop_on_error or None, "cwd": cwd, "env": dict(env) if env else None})
    # The batch as a whole can take the sum of its commands' limits (the engine's default for those without one).
    per_command = [c.get("timeout") if isinstance(c, Mapping) else None for c in commands]
    total = sum(request_timeout(t, timeout) for t in per_command)
    return APIRequest("POST", f"/v1/instances/{id_of(instance)}/exec/batch", json=body, timeout=total)


def _script_request(
    instance: IdRef,
    script: str,
    interpreter: str | None,
    args: Sequence[str] | None,
    options: Mapping[str, Any],
    timeout: float,
) -> APIRequest:
    # ExecScriptRequest takes the ExecRequest options except command/argv and user.
    body = {key: value for key, value in command_body("true", **options).items() if key != "command"}
    body["script"] = script
    if interpreter is not None:
        body["interpreter"] = interpreter
    if args is not None:
        body["args"] = list(args)
    return APIRequest(
        "POST", f"/v1/instances/{id_of(instance)}/exec/script", json=body, timeout=request_timeout(options.get("timeout"), timeout)
    )


def _parse_results(data: Any) -> list[ExecutionResult]:
    return [ExecutionResult.model_validate(item) for item in data.get("results", [])]


class Execution(SyncAPIResource):
    def _in_throwaway(self, snapshot: IdRef | None, run: Callable[[Instance], T]) -> T:
        source = snapshot if snapshot is not None else self._client.snapshots.create()
        instance = self._client.instances.start(source)
        try:
            return run(instance)
        finally:
            self._client.instances.delete(instance.id)

    def run(
        self,
        command: Command,
        target: Target | None = None,
        *,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
        **options: Any,
    ) -> ExecutionResult:
        """Runs ``command`` and waits for it. With ``on_stdout``/``on_stderr`` the output is streamed
        to the callbacks as it is produced. Options: ``cwd``, ``env``, ``user``, ``stdin``,
        ``timeout`` (seconds)."""
        if target is None or is_snapshot_id(target):
            t = self._client.timeout
            return self._in_throwaway(
                target, lambda inst: ExecutionResult.model_validate(self._client._call(_exec_request(inst, command, options, t, snapshot=True)))
            )
        if on_stdout is not None or on_stderr is not None:
            return self.stream(target, command, **options).collect(on_stdout, on_stderr)
        return ExecutionResult.model_validate(
            self._client._call(_exec_request(target, command, options, self._client.timeout, snapshot=False))
        )

    def stream(self, target: Target, command: Command, **options: Any) -> ExecStream:
        """Events as they happen: ``start`` (pid), ``stdout``/``stderr`` (data), ``exit``."""
        return ExecStream(self._client, _stream_request(target, command, options, self._client.timeout))

    def batch(
        self,
        target: Target,
        commands: Sequence[Command | BatchCommand],
        *,
        stop_on_error: bool = False,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> list[ExecutionResult]:
        def run(instance: IdRef) -> list[ExecutionResult]:
            return _parse_results(self._client._call(_batch_request(instance, commands, stop_on_error, cwd, env, self._client.timeout)))

        return self._in_throwaway(target, run) if is_snapshot_id(target) else run(target)

    def script(
        self, target: Target, script: str, *, interpreter: str | None = None, args: Sequence[str] | None = None, **options: Any
    ) -> ExecutionResult:
        def run(instance: IdRef) -> ExecutionResult:
            request = _script_request(instance, script, interpreter, args, options, self._client.timeout)
            return ExecutionResult.model_validate(self._client._call(request))

        return self._in_throwaway(target, run) if is_snapshot_id(target) else run(target)

    def with_snapshot(self, target: Target, command: Command, **options: Any) -> Snapshot:
        """Runs ``command`` and returns a snapshot of the state after it. On an instance the
        instance keeps running (and the snapshot is taken whatever the exit code); on a snapshot
        this is a build step (``ExecFailedError`` when the command fails)."""
        if is_snapshot_id(target):
            return self._client.snapshots.exec(target, command, **options)
        result = ExecutionResult.model_validate(
            self._client._call(_exec_request(target, command, options, self._client.timeout, snapshot=True))
        )
        assert result.snapshot_id is not None, "the engine answered exec with snapshot=true without snapshotId"
        return self._client.snapshots.get(result.snapshot_id)

    # The seed's ExecutionOperations names (target first), the same as TypeScript's
    # ``execution.exec/execBatch/execScript/execWithSnapshot/execStream``.
    def exec(self, target: Target, command: Command, **options: Any) -> ExecutionResult:
        return self.run(command, target, **options)

    exec_batch = batch
    exec_script = script
    exec_with_snapshot = with_snapshot
    exec_stream = stream


class AsyncExecution(AsyncAPIResource):
    async def _in_throwaway(self, snapshot: IdRef | None, run: Callable[[Instance], Awaitable[T]]) -> T:
        source = snapshot if snapshot is not None else await self._client.snapshots.create()
        instance = await self._client.instances.start(source)
        try:
            return await run(instance)
        finally:
            await self._client.instances.delete(instance.id)

    async def run(
        self,
        command: Command,
        target: Target | None = None,
        *,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
        **options: Any,
    ) -> ExecutionResult:
        if target is None or is_snapshot_id(target):
            t = self._client.timeout

            async def run_here(inst: Instance) -> ExecutionResult:
                return ExecutionResult.model_validate(await self._client._call(_exec_request(inst, command, options, t, snapshot=True)))

            return await self._in_throwaway(target, run_here)
        if on_stdout is not None or on_stderr is not None:
            return await self.stream(target, command, **options).collect(on_stdout, on_stderr)
        return ExecutionResult.model_validate(
            await self._client._call(_exec_request(target, command, options, self._client.timeout, snapshot=False))
        )

    def stream(self, target: Target, command: Command, **options: Any) -> AsyncExecStream:
        return AsyncExecStream(self._client, _stream_request(target, command, options, self._client.timeout))

    async def batch(
        self,
        target: Target,
        commands: Sequence[Command | BatchCommand],
        *,
        stop_on_error: bool = False,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> list[ExecutionResult]:
        async def run(instance: IdRef) -> list[ExecutionResult]:
            request = _batch_request(instance, commands, stop_on_error, cwd, env, self._client.timeout)
            return _parse_results(await self._client._call(request))

        return await (self._in_throwaway(target, run) if is_snapshot_id(target) else run(target))

    async def script(
        self, target: Target, script: str, *, interpreter: str | None = None, args: Sequence[str] | None = None, **options: Any
    ) -> ExecutionResult:
        async def run(instance: IdRef) -> ExecutionResult:
            request = _script_request(instance, script, interpreter, args, options, self._client.timeout)
            return ExecutionResult.model_validate(await self._client._call(request))

        return await (self._in_throwaway(target, run) if is_snapshot_id(target) else run(target))

    async def with_snapshot(self, target: Target, command: Command, **options: Any) -> Snapshot:
        if is_snapshot_id(target):
            return await self._client.snapshots.exec(target, command, **options)
        request = _exec_request(target, command, options, self._client.timeout, snapshot=True)
        result = ExecutionResult.model_validate(await self._client._call(request))
        assert result.snapshot_id is not None, "the engine answered exec with snapshot=true without snapshotId"
        return await self._client.snapshots.get(result.snapshot_id)

    # The seed's ExecutionOperations names (target first), as in the blocking client.
    async def exec(self, target: Target, command: Command, **options: Any) -> ExecutionResult:
        return await self.run(command, target, **options)

    exec_batch = batch
    exec_script = script
    exec_with_snapshot = with_snapshot
    exec_stream = stream
