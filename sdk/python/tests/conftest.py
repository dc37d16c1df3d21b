"""One real engine for the whole test session.

It runs from the repository's engine/dist with its own state directory, port and subnet, so it
never meets a developer's engine; at the end every instance it started is gone with it, and the
directory is unmounted and removed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import AsyncIterator, Iterator

import httpx
import pytest

from faas_sdk import AsyncFaaSClient, FaaSClient, Snapshot

REPO = Path(__file__).resolve().parents[3]
ENGINE_MAIN = REPO / "engine" / "dist" / "src" / "main.js"
TEST_SUBNET = os.environ.get("FAAS_TEST_SUBNET", "10.231.0.0/16")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Engine:
    def __init__(self, endpoint: str, api_key: str, state_dir: str) -> None:
        self.endpoint = endpoint
        self.api_key = api_key
        self.state_dir = state_dir

    def sync_client(self, **kwargs: object) -> FaaSClient:
        return FaaSClient(self.api_key, endpoint=self.endpoint, **kwargs)  # type: ignore[arg-type]

    def async_client(self, **kwargs: object) -> AsyncFaaSClient:
        return AsyncFaaSClient(self.api_key, endpoint=self.endpoint, **kwargs)  # type: ignore[arg-type]


def _wait_for_engine(process: subprocess.Popen[bytes], state_dir: str, port: int, log: Path) -> Engine:
    credentials = Path(state_dir) / "credentials.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"engine exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            data = json.loads(credentials.read_text())
            endpoint = f"http://127.0.0.1:{port}"
            if httpx.get(f"{endpoint}/v1/health", timeout=2).status_code == 200:
                return Engine(endpoint, data["apiKey"], state_dir)
        except (OSError, ValueError, httpx.HTTPError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"engine did not become healthy:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    if not ENGINE_MAIN.exists():
        subprocess.run(["npx", "tsc", "-p", "tsconfig.json"], cwd=REPO / "engine", check=True)
    state_dir = tempfile.mkdtemp(prefix="faas-pytest-")
    port = _free_port()
    log = Path(state_dir + ".log")
    env = {
        **os.environ,
        "FAAS_STATE_DIR": state_dir,
        "FAAS_PORT": str(port),
        "FAAS_SUBNET": TEST_SUBNET,
        # A small warm pool: this suite runs on 2-core machines next to other engines.
        "FAAS_WARM_POOL": "2",
        # Engines run side by side: the SSH gateway takes a free port (GET /v1/ssh/host says which).
        "FAAS_SSH_PORT": "0",
    }
    with log.open("wb") as log_file:
        process = subprocess.Popen(["node", str(ENGINE_MAIN)], env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        yield _wait_for_engine(process, state_dir, port, log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        # What `faas engine stop --clean` does: instances, namespaces, firewall chains, runsc mount.
        subprocess.run(["node", str(ENGINE_MAIN), "clean"], env=env, capture_output=True, timeout=300)
        subprocess.run(["umount", "-l", f"{state_dir}/runsc/null-netns"], capture_output=True)
        shutil.rmtree(state_dir, ignore_errors=True)
        log.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def client(engine: Engine) -> Iterator[FaaSClient]:
    with engine.sync_client() as sync_client:
        yield sync_client


@pytest.fixture
async def aclient(engine: Engine) -> AsyncIterator[AsyncFaaSClient]:
    # Function-scoped: an httpx.AsyncClient belongs to the event loop of the test that made it.
    async_client = engine.async_client()
    try:
        yield async_client
    finally:
        await async_client.close()


@pytest.fixture(scope="session")
def base_snapshot(client: FaaSClient) -> Snapshot:
    """One root snapshot of the default image, shared by tests that only need somewhere to run."""
    return client.snapshots.create(metadata={"suite": "python-sdk"})


@pytest.fixture(autouse=True)
def _no_leaked_instances(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test stops what it starts; a leak is stopped here (and fails nobody) so the 2-core
    machine never runs more than a handful of sandboxes."""
    if "engine" not in request.fixturenames:
        yield
        return
    sync_client: FaaSClient = request.getfixturevalue("client")
    yield
    for instance in sync_client.instances.list(state="ready"):
        sync_client.instances.stop(instance.id)
    for instance in sync_client.instances.list(state="paused"):
        sync_client.instances.stop(instance.id)
