"""Runs tests/conformance/scenarios/*.yaml with the blocking and the async client.

Each vocabulary call maps to the idiomatic SDK call in CALLS; the same table serves both clients
because an async call's result is simply awaited. Args arrive camelCase and are passed snake_case;
results are compared in the API's camelCase form. See tests/conformance/README.md.
"""

from __future__ import annotations

import inspect
import re
import tempfile
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from pydantic import BaseModel
from pydantic.alias_generators import to_snake

import faas_sdk
from faas_sdk import AsyncFaaSClient, FaaSClient, FaaSError

from .conftest import Engine
from .network_calls import create_tunnel_call, port_forward_call
from .parity_calls import PARITY_CALLS

SCENARIOS = sorted((Path(__file__).resolve().parents[3] / "tests" / "conformance" / "scenarios").glob("*.yaml"))
#: Names that differ between the SDKs (the YAML uses the TypeScript ones).
PYTHON_CLASS_NAMES = {"TimeoutError": "FaaSTimeoutError"}
BAD_KEY = "faas_conformance_wrong_key"

Client = FaaSClient | AsyncFaaSClient


async def _resolve(value: Any) -> Any:
    """Awaits async results and drains lists (pagers) so both clients yield plain values."""
    if inspect.isawaitable(value):
        value = await value
    if hasattr(value, "to_list"):
        value = value.to_list()
        if inspect.isawaitable(value):
            value = await value
    return value


def _ssh_exec(client: Client, target: str, command: str) -> Any:
    """Connects, runs one command and disconnects (sync or async, like the client)."""
    if isinstance(client, AsyncFaaSClient):

        async def run() -> Any:
            ssh = await client.ssh.connect(target)
            try:
                return await ssh.exec_command(command)
            finally:
                await ssh.disconnect()

        return run()
    ssh = client.ssh.connect(target)
    try:
        return ssh.exec_command(command)
    finally:
        ssh.disconnect()


async def _exec_stream(client: Client, target: str, command: str) -> dict[str, Any]:
    stream = client.execution.stream(target, command)
    events = []
    if isinstance(stream, faas_sdk.AsyncExecStream):
        async with stream:
            events = [event async for event in stream]
    else:
        with stream:
            events = list(stream)
    exit_event = next(e for e in events if e.type == "exit")
    return {
        "stdout": "".join(e.data or "" for e in events if e.type == "stdout"),
        "stderr": "".join(e.data or "" for e in events if e.type == "stderr"),
        "exitCode": exit_event.exit_code,
        "events": [e.type for e in events],
    }


async def _snapshot_exec(client: Client, id: str, command: str, fresh: bool | None, stream: bool) -> Any:
    if not stream:
        return await _resolve(client.snapshots.exec(id, command, fresh=fresh))
    chunks: list[str] = []
    snapshot = await _resolve(client.snapshots.exec(id, command, fresh=fresh, on_output=lambda data, _stream: chunks.append(data)))
    return {**snapshot.model_dump(mode="json", by_alias=True), "output": "".join(chunks)}


async def _snapshot_upload(client: Client, id: str, path: str, content: str, fresh: bool | None) -> Any:
    with tempfile.TemporaryDirectory(prefix="faas-conformance-") as directory:
        local = Path(directory) / "content"
        local.write_text(content)
        return await _resolve(client.snapshots.upload(id, str(local), path, fresh=fresh))


def _seconds(args: dict[str, Any]) -> dict[str, Any]:
    """The vocabulary's timeouts are milliseconds (the API's unit); the SDK takes seconds."""
    return {**args, "timeout": args["timeout"] / 1000} if "timeout" in args else args


CALLS: dict[str, Callable[..., Any]] = {
    "images.list": lambda c, **a: c.images.list(**a),
    "images.get": lambda c, id: c.images.get(id),
    "snapshots.create": lambda c, **a: c.snapshots.create(**a),
    "snapshots.get": lambda c, id: c.snapshots.get(id),
    "snapshots.delete": lambda c, id, force=False: c.snapshots.delete(id, force=force),
    "snapshots.list": lambda c, **a: c.snapshots.list(**a),
    "snapshots.set_metadata": lambda c, id, metadata: c.snapshots.set_metadata(id, metadata),
    "snapshots.exec": lambda c, id, command, fresh=None, stream=False: _snapshot_exec(c, id, command, fresh, stream),
    "snapshots.upload": lambda c, id, path, content, fresh=None: _snapshot_upload(c, id, path, content, fresh),
    "snapshots.get_pool": lambda c, id: c.snapshots.get_pool(id),
    "snapshots.diff": lambda c, base, target, **a: c.snapshots.diff(base, target, **a),
    "snapshots.merge": lambda c, snapshot_ids, **a: c.snapshots.merge(snapshot_ids, **a),
    "snapshots.set_pool": lambda c, id, min_instances, max_instances=None: c.snapshots.set_pool(id, min_instances, max_instances),
    "instances.start": lambda c, snapshot_id, **a: c.instances.start(snapshot_id, **a),
    "instances.get": lambda c, id: c.instances.get(id),
    "instances.stop": lambda c, id: c.instances.stop(id),
    "instances.pause": lambda c, id: c.instances.pause(id),
    "instances.resume": lambda c, id: c.instances.resume(id),
    "instances.restart": lambda c, id, **a: c.instances.restart(id, **a),
    "snapshots.clone": lambda c, id, **a: c.snapshots.clone(id, **a),
    "state.checkpoint": lambda c, instance, name=None: c.state.checkpoint(instance, name),
    "state.restore": lambda c, snapshot_id: c.state.restore(snapshot_id),
    "state.timeline": lambda c, instance: c.state.timeline(instance),
    "state.rollback": lambda c, instance, steps=1: c.state.rollback(instance, steps),
    "instances.delete": lambda c, id: c.instances.delete(id),
    "instances.list": lambda c, **a: c.instances.list(**a),
    "instances.wait_until_ready": lambda c, id, **a: c.instances.wait_until_ready(id, **_seconds(a)),
    "instances.get_metrics": lambda c, id: c.instances.get_metrics(id),
    "instances.logs": lambda c, id, **a: c.instances.logs(id, **a),
    "instances.snapshot": lambda c, id, **a: c.instances.snapshot(id, **a),
    "instances.branch": lambda c, id, count, **a: c.instances.branch(id, count, **a),
    "instances.set_network": lambda c, id, **a: c.instances.set_network(id, **a),
    "branches.create": lambda c, snapshot_id, **a: c.branches.create(snapshot_id, **a),
    "branches.get": lambda c, id: c.branches.get(id),
    "branches.list": lambda c, parent_id=None, **a: c.branches.list(parent_id, **a),
    "branches.delete": lambda c, id, force=False: c.branches.delete(id, force=force),
    "branches.checkout": lambda c, id: c.branches.checkout(id),
    "branches.commit": lambda c, id, message=None: c.branches.commit(id, message),
    "branches.diff": lambda c, id, target, text_diffs=None: c.branches.diff(id, target, text_diffs=text_diffs),
    "branches.merge": lambda c, branch_ids, strategy=None, message=None: c.branches.merge(branch_ids, strategy=strategy, message=message),
    "branches.rebase": lambda c, id, target, strategy=None: c.branches.rebase(id, target, strategy=strategy),
    "exec": lambda c, target, command: c.exec(command, target),
    "exec_batch": lambda c, target, commands: c.exec_batch(target, commands),
    "exec_script": lambda c, target, script, **a: c.exec_script(target, script, **a),
    "exec_with_snapshot": lambda c, target, command: c.exec_with_snapshot(target, command),
    "exec_stream": _exec_stream,
    "files.write": lambda c, target, path, content: c.files.write(target, path, content),
    "files.read": lambda c, target, path: c.files.read_text(target, path),
    "files.list": lambda c, target, path: c.files.list(target, path),
    "files.mkdir": lambda c, target, path, **a: c.files.mkdir(target, path, **a),
    "files.remove": lambda c, target, path, **a: c.files.remove(target, path, **a),
    "keys.create": lambda c, name, admin=False: c.keys.create(name, admin=admin),
    "keys.list": lambda c: c.keys.list(),
    "keys.revoke": lambda c, id: c.keys.revoke(id),
    "tokens.create": lambda c, **a: c.tokens.create(**a),
    "network.expose_http": lambda c, instance, name, port, **a: c.network.expose_http(instance, name, port, **a),
    "network.hide_http": lambda c, instance, name: c.network.hide_http(instance, name),
    "network.list_services": lambda c, instance: c.network.list_services(instance),
    "network.port_forward": port_forward_call,
    "network.create_tunnel": create_tunnel_call,
    "ssh_keys.add": lambda c, public_key, name=None: c.ssh_keys.add(public_key, name=name),
    "ssh_keys.list": lambda c: c.ssh_keys.list(),
    "ssh_keys.remove": lambda c, id: c.ssh_keys.remove(id),
    "ssh.host": lambda c: c.ssh.host(),
    "ssh.exec_command": lambda c, target, command: _ssh_exec(c, target, command),
    "raw": lambda c, method, path, body=None, auth=None: c.raw(method, path, body, api_key=BAD_KEY if auth == "bad" else None),
    **PARITY_CALLS,
}


def _snake_call(call: str) -> str:
    return ".".join(to_snake(part) for part in call.split("."))


def _lookup(saved: dict[str, Any], reference: str) -> Any:
    """``$name.path``: dots into objects, ``[n]`` into arrays."""
    value: Any = saved
    for name, index in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]", reference[1:]):
        value = value[int(index)] if index else value[name]
    return value


def _substitute(value: Any, saved: dict[str, Any]) -> Any:
    if isinstance(value, str) and value.startswith("$"):
        return _lookup(saved, value)
    if isinstance(value, dict):
        return {key: _substitute(item, saved) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, saved) for item in value]
    return value


def _plain(result: Any) -> Any:
    """Results in the API's camelCase JSON form; a list result becomes ``{items, length}``."""
    if isinstance(result, list):
        items = [_json(item) for item in result]
        return {"items": items, "length": len(items)}
    return _json(result)


def _json(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, dict):
        return {key: _json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json(item) for item in value]
    return value


def _match(expected: Any, actual: Any, where: str = "result") -> None:
    if isinstance(expected, str) and expected == "~any":
        assert actual is not None, f"{where}: expected a value"
    elif isinstance(expected, str) and expected.startswith("~re:"):
        assert isinstance(actual, str) and re.search(expected[4:], actual), f"{where}: {actual!r} !~ {expected[4:]}"
    elif isinstance(expected, str) and expected.startswith("~len:"):
        assert actual is not None and len(actual) == int(expected[5:]), f"{where}: length of {actual!r} != {expected[5:]}"
    elif isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{where}: missing {key!r} in {actual!r}"
            _match(value, actual[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{where}: {actual!r} vs {expected!r}"
        for index, (want, got) in enumerate(zip(expected, actual)):
            _match(want, got, f"{where}[{index}]")
    else:
        assert expected == actual, f"{where}: expected {expected!r}, got {actual!r}"


def _match_error(expected: dict[str, Any], error: FaaSError, where: str) -> None:
    wanted_class = PYTHON_CLASS_NAMES.get(expected.get("class", ""), expected.get("class"))
    actual = {"code": error.code, "statusCode": error.status_code, "class": type(error).__name__, "details": error.details}
    _match({**expected, "class": wanted_class} if wanted_class else expected, actual, where)
    assert isinstance(error, getattr(faas_sdk, type(error).__name__)), where


async def _step(client: Client, step: dict[str, Any], saved: dict[str, Any]) -> Any:
    args = {to_snake(key): value for key, value in _substitute(step.get("args") or {}, saved).items()}
    call = step["call"]
    if call == "raw":  # its args are an HTTP request, not SDK keywords
        args = _substitute(step.get("args") or {}, saved)
    if "as" not in step:
        return _plain(await _resolve(CALLS[_snake_call(call)](client, **args)))
    # Run this step as another API key or token (``as: $tenant.secret``), with a client of the same kind.
    other = type(client)(str(_substitute(step["as"], saved)), endpoint=client.endpoint, max_retries=0)
    try:
        return _plain(await _resolve(CALLS[_snake_call(call)](other, **args)))
    finally:
        closed = other.close()
        if inspect.isawaitable(closed):
            await closed


async def run_scenario(client: Client, scenario: dict[str, Any]) -> None:
    saved: dict[str, Any] = {}
    try:
        for number, step in enumerate(scenario["steps"], start=1):
            where = f"{scenario['name']} step {number} ({step['call']})"
            if "expectError" in step:
                with pytest.raises(FaaSError) as caught:
                    await _step(client, step, saved)
                _match_error(_substitute(step["expectError"], saved), caught.value, where)
                continue
            result = await _step(client, step, saved)
            if "save" in step:
                saved[step["save"]] = result
            if "expect" in step:
                _match(_substitute(step["expect"], saved), result, where)
    finally:
        for step in scenario.get("cleanup") or []:
            try:
                await _step(client, step, saved)
            except Exception:  # cleanup is best effort, and a missing $name just means "never made"
                pass


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
async def test_scenario_sync(engine: Engine, path: Path) -> None:
    with engine.sync_client() as client:
        await run_scenario(client, yaml.safe_load(path.read_text()))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
async def test_scenario_async(engine: Engine, path: Path) -> None:
    async with engine.async_client() as client:
        await run_scenario(client, yaml.safe_load(path.read_text()))
