"""Behaviour issue 16 made the same in both SDKs (docs/sdk-behaviour.md), each a regression test
of a former Python-only divergence: a missing key, eager lists, streamed uploads, stdin writes
that are never repeated, and the methods Python lacked."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from faas_sdk import AsyncFaaSClient, FaaSClient, FaaSError, Snapshot, UnauthorizedError
from faas_sdk._base_client import APIRequest
from faas_sdk._config import DEFAULT_TIMEOUT
from faas_sdk.resources.processes import _stdin_request

from .conftest import Engine


def test_missing_key_is_faas_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FAAS_API_KEY", raising=False)
    monkeypatch.setenv("FAAS_STATE_DIR", str(tmp_path))  # no credentials.json there
    if Path("/var/lib/faas/credentials.json").exists():
        pytest.skip("a local engine's credentials.json would supply a key")
    with pytest.raises(FaaSError) as caught:
        FaaSClient(endpoint="http://127.0.0.1:1")
    assert caught.value.code == "missing_api_key" and "FAAS_API_KEY" in caught.value.message


def test_default_timeout_is_ten_minutes() -> None:
    assert DEFAULT_TIMEOUT == 600.0  # TypeScript: DEFAULT_TIMEOUT_MS = 600_000


def test_sync_list_with_a_bad_key_fails_at_the_call(engine: Engine) -> None:
    with FaaSClient("not-a-key", endpoint=engine.endpoint, max_retries=0) as stranger:
        with pytest.raises(UnauthorizedError):
            stranger.snapshots.list()  # not iterated: the first page is fetched by the call


async def test_async_list_awaits_like_typescript(engine: Engine, base_snapshot: Snapshot) -> None:
    async with AsyncFaaSClient("not-a-key", endpoint=engine.endpoint, max_retries=0) as stranger:
        with pytest.raises(UnauthorizedError):
            await stranger.snapshots.list()
    async with engine.async_client() as client:
        listed = await client.snapshots.list(page_size=1)
        assert base_snapshot.id in {s.id for s in listed} or len(listed) >= 1


def test_stdin_writes_carry_no_idempotency_key_and_are_not_repeated(client: FaaSClient) -> None:
    request = client._prepare(_stdin_request("inst_x", 1, b"data"))
    assert request.idempotency_key is None
    assert not client._retry.is_repeatable(request.method, request.idempotency_key)
    # Ordinary POSTs still get one key reused on every retry.
    assert client._prepare(APIRequest("POST", "/v1/snapshots", json={})).idempotency_key is not None


def test_upload_streams_instead_of_reading_the_whole_file(client: FaaSClient, base_snapshot: Snapshot, tmp_path: Path) -> None:
    size = 24 * 1024 * 1024
    local = tmp_path / "big.bin"
    with local.open("wb") as out:
        for _ in range(size // (1024 * 1024)):
            out.write(os.urandom(1024 * 1024))
    with client.instances.start(base_snapshot) as instance:
        tracemalloc.start()
        try:
            result = client.files.upload(instance, local, "/root/big.bin")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert result.bytes == size
        assert peak < size // 4, f"upload held {peak} bytes at once for a {size}-byte file"
        assert instance.exec("stat -c %s /root/big.bin").stdout.strip() == str(size)


def test_methods_python_gained(client: FaaSClient, base_snapshot: Snapshot) -> None:
    metrics: dict[str, Any] = client.metrics()
    assert isinstance(metrics, dict) and metrics  # engine-wide counts (GET /v1/metrics)
    with client.instances.start(base_snapshot, max_processes=128) as instance:
        assert instance.resources.max_processes == 128
        assert instance.wait_until_ready().state == "ready"
        assert client.instances.wait(instance, "ready").id == instance.id
        assert instance.get_metrics().instance_id == instance.id
        assert instance.set_metadata({"parity": "yes"}).metadata == {"parity": "yes"}
        results = instance.exec_batch(["true", {"command": "pwd", "cwd": "/tmp"}, {"command": ["sh", "-c", "echo $X"], "env": {"X": "y"}}])
        assert [r.stdout for r in results] == ["", "/tmp\n", "y\n"]
        instance.files.write("/root/a.txt", "hello")
        assert instance.files.read_text("/root/a.txt") == "hello"
        process = instance.processes.start("cat")
        client.processes.write_stdin(instance, process.pid, "once\n")
        client.processes.close_stdin(instance, process.pid)
        assert client.processes.wait(instance, process.pid, 30).exit_code == 0
        assert "".join(c.data or "" for c in client.processes.output(instance, process.pid, follow=False) if c.type == "stdout") == "once\n"
    clone = base_snapshot.clone()
    try:
        assert clone.set_metadata({"k": "v"}).metadata == {"k": "v"}
    finally:
        clone.delete()
