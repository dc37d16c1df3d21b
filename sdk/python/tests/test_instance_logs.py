"""Issue 16: the instance log (``instances.logs`` and ``Instance.logs``), and the endpoint taken
from FAAS_HOST/FAAS_PORT the same way as the TypeScript SDK and ``faas engine status``."""

from __future__ import annotations

import json

import pytest

from faas_sdk import AsyncFaaSClient, FaaSClient, InstanceNotReadyError, Snapshot
from faas_sdk._config import resolve_config


def test_endpoint_from_faas_port_before_the_credentials_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "credentials.json").write_text(json.dumps({"endpoint": "http://file:1", "apiKey": "k"}))
    env = {"FAAS_STATE_DIR": str(tmp_path), "FAAS_PORT": "7500"}
    assert resolve_config(api_key=None, endpoint=None, timeout=None, max_retries=None, env=env).endpoint == "http://127.0.0.1:7500"
    for host, url in (("0.0.0.0", "http://127.0.0.1:7440"), ("::", "http://[::1]:7440"), ("10.0.0.5", "http://10.0.0.5:7440")):
        got = resolve_config(api_key="k", endpoint=None, timeout=None, max_retries=None, env={"FAAS_HOST": host})
        assert got.endpoint == url
    explicit = {**env, "FAAS_ENDPOINT": "http://env:2"}
    assert resolve_config(api_key=None, endpoint=None, timeout=None, max_retries=None, env=explicit).endpoint == "http://env:2"
    # Neither set: the credentials file, as before.
    assert resolve_config(api_key=None, endpoint=None, timeout=None, max_retries=None, env={"FAAS_STATE_DIR": str(tmp_path)}).endpoint == "http://file:1"


def test_instance_logs(client: FaaSClient, base_snapshot: Snapshot) -> None:
    with client.instances.start(base_snapshot) as instance:
        before = client.instances.logs(instance)
        proc = client.processes.start(instance, "echo hello-log; echo oops >&2; exit 2")
        assert proc.wait(timeout=30).exit_code == 2
        logs = client.instances.logs(instance, since=before.next_seq)
        mine = [e for e in logs.entries if e.pid == proc.pid]
        assert mine[0].stream == "agent" and mine[0].data.startswith("started: echo hello-log")
        assert ("stdout", "hello-log\n") in [(e.stream, e.data) for e in mine]
        assert ("stderr", "oops\n") in [(e.stream, e.data) for e in mine]
        assert mine[-1].data == "exited: exit code 2\n"
        assert len(instance.logs(tail=1).entries) == 1
        assert client.instances.logs(instance, since=logs.next_seq).entries == []
    with pytest.raises(InstanceNotReadyError):
        client.instances.logs(instance)
    client.instances.delete(instance)


async def test_async_instance_logs(aclient: AsyncFaaSClient, base_snapshot: Snapshot) -> None:
    instance = await aclient.instances.start(base_snapshot)
    try:
        proc = await aclient.processes.start(instance, "echo async-log")
        await proc.wait(timeout=30)
        logs = await aclient.instances.logs(instance, tail=10)
        assert any(e.data == "async-log\n" and e.stream == "stdout" for e in logs.entries)
        assert logs.next_seq >= logs.entries[-1].seq
    finally:
        await aclient.instances.delete(instance)
