"""The CI check that both SDKs have the same public surface (scripts/check-sdk-parity.mjs): passes
on the tree as it is, and fails — naming the method — when an allow-listed difference is no longer
allowed. Needs the TypeScript SDK built (npm run build), as scripts/test.sh does first."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts/check-sdk-parity.mjs"
BUILT = ROOT / "sdk/typescript/dist/index.js"

pytestmark = pytest.mark.skipif(not BUILT.exists() or shutil.which("node") is None, reason="TypeScript SDK not built")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["node", str(SCRIPT), *args], capture_output=True, text=True, timeout=120, check=False)


def test_both_sdks_expose_the_same_methods() -> None:
    result = _run()
    assert result.returncode == 0, result.stderr


def test_a_method_in_one_sdk_only_fails_the_check(tmp_path: Path) -> None:
    allow = json.loads((ROOT / "sdk/parity-allowlist.json").read_text())
    allow["entries"] = [e for e in allow["entries"] if e.get("typescript") != "client.request"]
    path = tmp_path / "allow.json"
    path.write_text(json.dumps(allow))
    result = _run("--allowlist", str(path))
    assert result.returncode == 1
    assert "only in TypeScript: client.request" in result.stderr and "only in Python: client.raw" in result.stderr


def test_a_stale_allow_list_entry_fails_the_check(tmp_path: Path) -> None:
    allow = json.loads((ROOT / "sdk/parity-allowlist.json").read_text())
    allow["entries"].append({"python": "snapshots.create", "only": "python", "reason": "not true: both have it"})
    path = tmp_path / "allow.json"
    path.write_text(json.dumps(allow))
    result = _run("--allowlist", str(path))
    assert result.returncode == 1 and "stale allow-list entry" in result.stderr
