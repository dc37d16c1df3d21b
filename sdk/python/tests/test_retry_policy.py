"""The retry policy against a scripted local HTTP server (no engine): what is repeated, with
which idempotency key, and how long the client waits."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from faas_sdk import AsyncFaaSClient, FaaSClient, InternalError, NetworkError, ResourceLimitError
from faas_sdk._base_client import APIRequest
from faas_sdk._config import resolve_config
from faas_sdk._retry import MAX_DELAY, RetryPolicy


class Script:
    """Answers each request with the next (status, headers) and records what it received."""

    def __init__(self, answers: list[tuple[int, dict[str, str]]]) -> None:
        self.answers = answers
        self.received: list[dict[str, str | None]] = []


def _handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self.received_at = time.monotonic()
            script.received.append(
                {"method": self.command, "key": self.headers.get("Idempotency-Key"), "at": str(time.monotonic())}
            )
            status, headers = script.answers.pop(0) if script.answers else (200, {})
            body = json.dumps(
                {"ok": True} if status < 400 else {"error": {"code": "internal" if status >= 500 else "resource_limit", "message": "scripted", "details": None, "requestId": "req_test"}}
            ).encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def serve() -> Iterator[object]:
    servers: list[ThreadingHTTPServer] = []

    def start(answers: list[tuple[int, dict[str, str]]]) -> tuple[Script, str]:
        script = Script(answers)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return script, f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()


def test_post_without_idempotency_key_is_never_repeated(serve) -> None:  # type: ignore[no-untyped-def]
    script, url = serve([(503, {}), (200, {})])
    client = FaaSClient("k", endpoint=url)
    # The SDK keys every POST itself, so disable that step to see how a key-less POST is treated.
    request = APIRequest("POST", "/v1/anything", json={})
    client._prepare = lambda r: r  # type: ignore[method-assign,assignment]
    with pytest.raises(InternalError):
        client._call(request)
    assert len(script.received) == 1


def test_sdk_posts_carry_one_key_reused_across_retries(serve) -> None:  # type: ignore[no-untyped-def]
    script, url = serve([(503, {"Retry-After": "0"}), (502, {"Retry-After": "0"}), (200, {})])
    client = FaaSClient("k", endpoint=url)
    assert client._call(APIRequest("POST", "/v1/instances", json={"snapshotId": "snap_x"})) == {"ok": True}
    keys = {entry["key"] for entry in script.received}
    assert len(script.received) == 3 and len(keys) == 1 and None not in keys


def test_retry_after_is_honoured(serve) -> None:  # type: ignore[no-untyped-def]
    script, url = serve([(429, {"Retry-After": "1"}), (200, {})])
    client = FaaSClient("k", endpoint=url)
    started = time.monotonic()
    client._call(APIRequest("GET", "/v1/instances"))
    assert 0.95 <= time.monotonic() - started < 3
    assert len(script.received) == 2


def test_gives_up_after_max_retries_with_the_engine_error(serve) -> None:  # type: ignore[no-untyped-def]
    script, url = serve([(429, {"Retry-After": "0"})] * 5)
    client = FaaSClient("k", endpoint=url, max_retries=2)
    with pytest.raises(ResourceLimitError) as caught:
        client._call(APIRequest("GET", "/v1/instances"))
    assert len(script.received) == 3
    assert caught.value.retry_after == 0 and caught.value.request_id == "req_test"


async def test_async_client_retries_the_same_way(serve) -> None:  # type: ignore[no-untyped-def]
    script, url = serve([(503, {"Retry-After": "0"}), (200, {})])
    async with AsyncFaaSClient("k", endpoint=url) as client:
        assert await client._call(APIRequest("DELETE", "/v1/instances/inst_x")) == {"ok": True}
    assert len(script.received) == 2


def test_connection_refused_is_a_network_error() -> None:
    client = FaaSClient("k", endpoint="http://127.0.0.1:9", max_retries=0)
    with pytest.raises(NetworkError):
        client.health()


def test_backoff_grows_to_the_cap_with_jitter() -> None:
    policy = RetryPolicy(max_retries=10)
    delays = [policy.delay(attempt) for attempt in range(8)]
    assert 0.375 <= delays[0] <= 0.5
    assert all(d <= MAX_DELAY for d in delays) and delays[-1] >= MAX_DELAY * 0.75
    assert policy.delay(0, retry_after=3) == 3


def test_config_comes_from_env_then_credentials_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "credentials.json").write_text(json.dumps({"endpoint": "http://file:1", "apiKey": "from-file"}))
    from_file = resolve_config(api_key=None, endpoint=None, timeout=None, max_retries=None, env={"FAAS_STATE_DIR": str(tmp_path)})
    assert (from_file.api_key, from_file.endpoint, from_file.max_retries) == ("from-file", "http://file:1", 2)
    env = {"FAAS_STATE_DIR": str(tmp_path), "FAAS_API_KEY": "from-env", "FAAS_ENDPOINT": "http://env:2/"}
    from_env = resolve_config(api_key=None, endpoint=None, timeout=None, max_retries=None, env=env)
    assert (from_env.api_key, from_env.endpoint) == ("from-env", "http://env:2")
    explicit = resolve_config(api_key="arg", endpoint="http://arg:3", timeout=5, max_retries=0, env=env)
    assert (explicit.api_key, explicit.endpoint, explicit.timeout, explicit.max_retries) == ("arg", "http://arg:3", 5.0, 0)
