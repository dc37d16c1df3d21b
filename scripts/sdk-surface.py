"""Prints the Python SDK's public surface as JSON for scripts/check-sdk-parity.mjs: every public
method of the client and of each resource it holds, of the bound objects (Instance, Snapshot, …)
and the exported error classes. Introspected with inspect, so it is what users can call."""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sdk/python"))

import faas_sdk  # noqa: E402
from pydantic import BaseModel  # noqa: E402

#: Bound objects compared by class (the TypeScript class of the same name).
BOUND = ["Instance", "Snapshot", "Branch", "ProcessHandle", "Terminal", "PortForward", "Tunnel", "SSHClient", "SSHShell", "ExecStream"]
MODEL_NAMES = set(dir(BaseModel))


def public_methods(cls: type) -> list[str]:
    names = []
    for name, member in inspect.getmembers(cls):
        if name.startswith("_") or (issubclass(cls, BaseModel) and name in MODEL_NAMES):
            continue
        if callable(member) or isinstance(inspect.getattr_static(cls, name, None), property):
            names.append(name)
    return sorted(names)


def main() -> None:
    client = faas_sdk.FaaSClient(api_key="parity-check", endpoint="http://127.0.0.1:1")
    surface: dict[str, list[str]] = {"client": public_methods(type(client))}
    for attr, value in vars(client).items():
        if not attr.startswith("_") and hasattr(value, "_client"):
            surface[attr] = public_methods(type(value))
    for name in BOUND:
        surface[f"class {name}"] = public_methods(getattr(faas_sdk, name))
    surface["errors"] = sorted(n for n in faas_sdk.__all__ if n.endswith("Error"))
    client.close()
    print(json.dumps(surface))


if __name__ == "__main__":
    main()
