"""Where the client finds its engine: arguments, then environment, then the local credentials file.

Order for each of api key and endpoint: the constructor argument; ``FAAS_API_KEY`` /
``FAAS_ENDPOINT`` (the endpoint also from ``FAAS_HOST``/``FAAS_PORT``, as the engine listens); ``$FAAS_STATE_DIR/credentials.json``; ``/var/lib/faas/credentials.json`` (what a
locally installed engine writes, ``{"endpoint", "apiKey"}``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ._exceptions import FaaSError

DEFAULT_ENDPOINT = "http://127.0.0.1:7440"
DEFAULT_STATE_DIR = "/var/lib/faas"
#: Seconds (10 minutes, the TypeScript SDK's 600 000 ms): long enough for a snapshot create or a
#: default 5-minute exec; per-call ``timeout=`` overrides it.
DEFAULT_TIMEOUT = 600.0
DEFAULT_MAX_RETRIES = 2


@dataclass(frozen=True)
class OptimizationHints:
    """The seed's OptimizationHints, on the client (every call) or on one call. ``reuse_snapshots``
    (default True): ``snapshots.create`` and the chain steps ``exec``/``upload`` are answered from the
    engine's step cache when the same create or step already ran (docs/step-cache.md); False sends
    ``fresh``. The others (None: the engine's default) travel as ``optimizationHints`` on
    ``snapshots.create``, ``instances.snapshot`` and ``instances.branch`` (docs/storage.md):
    ``parallel_execution`` False restores a branch's children one after another;
    ``lazy_loading`` False pins the image's materialized copy (restores never assemble it);
    ``incremental_snapshots`` False keeps the image whole instead of deduplicated."""

    reuse_snapshots: bool = True
    parallel_execution: bool | None = None
    lazy_loading: bool | None = None
    incremental_snapshots: bool | None = None


@dataclass(frozen=True)
class ClientConfig:
    api_key: str
    endpoint: str
    timeout: float
    max_retries: int


def _read_credentials(env: Mapping[str, str]) -> dict[str, Any]:
    state_dir = env.get("FAAS_STATE_DIR") or DEFAULT_STATE_DIR
    for candidate in (Path(state_dir) / "credentials.json", Path(DEFAULT_STATE_DIR) / "credentials.json"):
        try:
            loaded = json.loads(candidate.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(loaded, dict):
            return loaded
    return {}


def endpoint_from_host_port(env: Mapping[str, str]) -> str | None:
    """The engine's address from FAAS_HOST / FAAS_PORT, the variables the engine listens on (so a
    client beside an engine started with FAAS_PORT=7500 finds it with no state dir); None when
    neither is set. A wildcard listen address means this host's loopback. Same rule as the TS SDK."""
    host = env.get("FAAS_HOST") or None
    port = env.get("FAAS_PORT") or None
    if host is None and port is None:
        return None
    name = "127.0.0.1" if host in (None, "0.0.0.0") else "::1" if host == "::" else str(host)
    return f"http://{f'[{name}]' if ':' in name else name}:{port or 7440}"


def resolve_config(
    *,
    api_key: str | None,
    endpoint: str | None,
    timeout: float | None,
    max_retries: int | None,
    env: Mapping[str, str] | None = None,
) -> ClientConfig:
    environ = os.environ if env is None else env
    key = api_key or environ.get("FAAS_API_KEY")
    url = endpoint or environ.get("FAAS_ENDPOINT") or endpoint_from_host_port(environ)
    if not key or not url:
        # Only touch the file when something is still missing, so explicit config never reads it.
        credentials = _read_credentials(environ)
        key = key or credentials.get("apiKey")
        url = url or credentials.get("endpoint")
    if not key:
        # FaaSError with code ``missing_api_key``, as in the TypeScript SDK.
        raise FaaSError(
            "no API key: pass api_key=, set FAAS_API_KEY, or start a local engine (`faas engine start`), "
            f"which writes {Path(environ.get('FAAS_STATE_DIR') or DEFAULT_STATE_DIR) / 'credentials.json'}",
            code="missing_api_key",
        )
    return ClientConfig(
        api_key=str(key),
        endpoint=str(url or DEFAULT_ENDPOINT).rstrip("/"),
        timeout=DEFAULT_TIMEOUT if timeout is None else float(timeout),
        max_retries=DEFAULT_MAX_RETRIES if max_retries is None else max(0, int(max_retries)),
    )
