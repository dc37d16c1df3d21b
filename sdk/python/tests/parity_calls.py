"""Conformance vocabulary for events, parallel, processes, terminals and file transfer
(tests/conformance/README.md). The TypeScript runner's twin is sdk/typescript/test/helpers/parity-calls.ts:
each call does the same thing through each SDK's idiomatic API and returns the same plain JSON.
Works with the blocking and the asyncio client."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any, Callable

from faas_sdk import AsyncFaaSClient, FaaSClient, Instance

Client = FaaSClient | AsyncFaaSClient


def _check(result: Any) -> str:
    if result.exit_code != 0:
        raise RuntimeError(f"exit {result.exit_code}")  # the same failure as TypeScript's Error
    return str(result.stdout)


def _task(client: Client, command: str) -> Callable[[Instance], Any]:
    """A parallel task running ``command`` on its branch: its stdout, or a failure on a non-zero exit."""
    if isinstance(client, AsyncFaaSClient):
        async def run_async(child: Instance) -> str:
            return _check(await client.execution.exec(child.id, command))

        return run_async
    return lambda child: _check(client.execution.exec(child.id, command))


async def events_replay(client: Client, resource_id: str, count: int, types: list[str] | None = None) -> list[Any]:
    events: list[Any] = []
    if isinstance(client, AsyncFaaSClient):
        async for event in client.events.stream(last_event_id=0, resource_id=resource_id, types=types):
            events.append(event)
            if len(events) >= count:
                break
        return events

    def read() -> list[Any]:
        stream = client.events.stream(last_event_id=0, resource_id=resource_id, types=types)
        for event in stream:
            events.append(event)
            if len(events) >= count:
                break
        stream.close()
        return events

    return await asyncio.wait_for(asyncio.to_thread(read), 120)


async def events_connect(client: Client) -> None:
    if isinstance(client, AsyncFaaSClient):
        await client.events.on("*", lambda _event: None)
        try:
            await client.events.connected(timeout=60)
        finally:
            await client.events.close()
        return
    client.events.on("*", lambda _event: None)
    try:
        client.events.connected(timeout=60)
    finally:
        client.events.close()


async def parallel_map(client: Client, source: str, items: list[str], command: str) -> Any:
    if isinstance(client, AsyncFaaSClient):
        async def run_async(item: str, child: Instance) -> str:
            return _check(await client.execution.exec(child.id, command.replace("{item}", item)))

        return await client.parallel.map(items, run_async, source=source)
    return client.parallel.map(items, lambda item, child: _check(client.execution.exec(child.id, command.replace("{item}", item))), source=source)


async def parallel_all(client: Client, source: str, commands: list[str]) -> Any:
    tasks = [_task(client, c) for c in commands]
    return await client.parallel.all(source, tasks) if isinstance(client, AsyncFaaSClient) else client.parallel.all(source, tasks)


async def parallel_race(client: Client, source: str, commands: list[str]) -> dict[str, Any]:
    tasks = [_task(client, c) for c in commands]
    if isinstance(client, AsyncFaaSClient):
        won = await client.parallel.race(source, tasks)
        await client.instances.stop(won.instance.id)
    else:
        won = client.parallel.race(source, tasks)
        client.instances.stop(won.instance.id)
    return {"value": won.value, "index": won.index, "parentInstanceId": won.instance.parent_instance_id}


async def processes_start(client: Client, target: str, command: str) -> Any:
    handle = client.processes.start(target, command)
    return (await handle if isinstance(client, AsyncFaaSClient) else handle).info  # type: ignore[misc]


async def processes_output(client: Client, target: str, pid: int) -> dict[str, Any]:
    out: dict[str, Any] = {"stdout": "", "stderr": "", "exitCode": None}

    def take(event: Any) -> None:
        if event.type in ("stdout", "stderr"):
            out[event.type] += event.data or ""
        if event.type == "exit":
            out["exitCode"] = event.exit_code

    if isinstance(client, AsyncFaaSClient):
        async for event in client.processes.output(target, pid):
            take(event)
    else:
        for event in client.processes.output(target, pid):
            take(event)
    return out


async def terminal_run(client: Client, target: str, command: str, input: str | None = None) -> dict[str, Any]:  # noqa: A002
    if isinstance(client, AsyncFaaSClient):
        aterminal = await client.terminals.open(target, command=command)
        if input is not None:
            await aterminal.send(input)
        exit_code = await asyncio.wait_for(aterminal.wait(), 60)
        output = aterminal.output
    else:
        terminal = client.terminals.open(target, command=command)
        if input is not None:
            terminal.send(input)
        exit_code = terminal.wait(timeout=60)
        output = terminal.output
    return {"output": output.decode().replace("\r\n", "\n"), "exitCode": exit_code}


async def files_upload(client: Client, target: str, path: str, content: str | None = None, files: dict[str, str] | None = None) -> Any:
    with tempfile.TemporaryDirectory(prefix="faas-conformance-") as directory:
        if files is not None:
            local = Path(directory) / "tree"
            for name, text in files.items():
                (local / name).parent.mkdir(parents=True, exist_ok=True)
                (local / name).write_text(text)
        else:
            local = Path(directory) / "file"
            local.write_text(content or "")
        result = client.files.upload(target, local, path)
        return await result if isinstance(client, AsyncFaaSClient) else result  # type: ignore[misc]


async def files_download(client: Client, target: str, path: str) -> Any:
    with tempfile.TemporaryDirectory(prefix="faas-conformance-") as directory:
        local = Path(directory) / "out"
        done = client.files.download(target, path, local)
        if isinstance(client, AsyncFaaSClient):
            await done  # type: ignore[misc]
        if local.is_dir():
            return {str(p.relative_to(local)): p.read_text() for p in sorted(local.rglob("*")) if p.is_file()}
        return local.read_text()


PARITY_CALLS: dict[str, Callable[..., Any]] = {
    "events.replay": events_replay,
    "events.connect": events_connect,
    "parallel.map": parallel_map,
    "parallel.all": parallel_all,
    "parallel.race": parallel_race,
    "processes.start": processes_start,
    "processes.list": lambda c, target: c.processes.list(target),
    "processes.info": lambda c, target, pid: c.processes.info(target, pid),
    "processes.write_stdin": lambda c, target, pid, data: c.processes.write_stdin(target, pid, data),
    "processes.close_stdin": lambda c, target, pid: c.processes.close_stdin(target, pid),
    "processes.signal": lambda c, target, pid, signal: c.processes.signal(target, pid, signal),
    "processes.wait": lambda c, target, pid: c.processes.wait(target, pid),
    "processes.output": processes_output,
    "terminal.run": terminal_run,
    "files.upload": files_upload,
    "files.download": files_download,
    "files.copy": lambda c, source, destination, path, to_path=None: c.files.copy(source, destination, path, to_path=to_path),
}
