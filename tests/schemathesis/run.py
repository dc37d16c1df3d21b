#!/usr/bin/env python3
"""Runs schemathesis (`--checks all`, every phase including stateful) against a real engine.

    python3 tests/schemathesis/run.py [--budget SECONDS]

Starts the engine from engine/dist on a temporary state directory, its own port and subnet
(FAAS_TEST_SUBNET, default 10.233.0.0/16), then runs schemathesis twice against spec/openapi.yaml:
once with the engine's key and once without one (where every route but /v1/health must answer 401).
Each run has a wall-clock budget (`--max-time`); the whole suite takes about `--budget` seconds plus
the engine's start and clean-up. Afterwards every instance and snapshot the runs made is deleted
(and the deletion checked), the engine stopped and its directory removed. Exits non-zero on any
failure that is not on the known list in hooks.py (which names the helper fixing it).
"""

from __future__ import annotations

import argparse
import base64
import collections
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
ENGINE_MAIN = REPO / "engine" / "dist" / "src" / "main.js"
SPEC = REPO / "spec" / "openapi.yaml"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(endpoint: str, key: str, method: str, path: str) -> tuple[int, Any]:
    req = urllib.request.Request(endpoint + path, method=method, headers={"authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=120) as res:
            text = res.read()
            return res.status, json.loads(text) if text else None
    except urllib.error.HTTPError as err:
        return err.code, err.read()[:300]


class Engine:
    def __init__(self, log_dir: Path) -> None:
        self.state_dir = tempfile.mkdtemp(prefix="faas-test-schemathesis-")
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / "engine.log"
        self.subnet = os.environ.get("FAAS_TEST_SUBNET", "10.233.0.0/16")
        self.tag = "ts" + secrets.token_hex(2)
        env = {
            **os.environ,
            "FAAS_STATE_DIR": self.state_dir,
            "FAAS_PORT": str(self.port),
            "FAAS_SUBNET": self.subnet,
            "FAAS_NET_TAG": self.tag,
            # Small pools and a low live-instance cap: the fuzzer branches and starts instances, and
            # the machine has 2 cores. Beyond the cap the engine answers 429, a documented answer.
            "FAAS_WARM_POOL": "1",
            "FAAS_NETNS_POOL": "2",
            "FAAS_MAX_INSTANCES": "4",
            "FAAS_STOP_INSTANCES_ON_EXIT": "1",
        }
        for name in ("FAAS_ENDPOINT", "FAAS_API_KEY"):
            env.pop(name, None)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(["node", str(ENGINE_MAIN)], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()  # nothing of a failed start stays behind
            raise

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + 90
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"engine exited with {self.process.returncode}:\n{self.log_path.read_text()[-3000:]}")
            try:
                self.key = json.loads((Path(self.state_dir) / "credentials.json").read_text())["apiKey"]
                with urllib.request.urlopen(self.endpoint + "/v1/health", timeout=2) as res:
                    if res.status == 200:
                        return
            except (OSError, ValueError, KeyError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"engine did not become healthy:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.3)

    def delete_everything(self) -> list[str]:
        """Deletes every instance and snapshot; returns what is still there afterwards."""
        for kind in ("instances", "snapshots"):
            for _ in range(20):  # pages of 200
                status, page = call(self.endpoint, self.key, "GET", f"/v1/{kind}?limit=200")
                if status != 200 or not page["data"]:
                    break
                for item in page["data"]:
                    suffix = "?force=true" if kind == "snapshots" else ""
                    call(self.endpoint, self.key, "DELETE", f"/v1/{kind}/{item['id']}{suffix}")
        left = []
        for kind in ("instances", "snapshots"):
            status, page = call(self.endpoint, self.key, "GET", f"/v1/{kind}?limit=200")
            left += [item["id"] for item in page["data"]] if status == 200 else [f"{kind}: list answered {status}"]
        return left

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        subprocess.run(["umount", "-l", f"{self.state_dir}/runsc/null-netns"], capture_output=True)
        # A SIGTERMed engine keeps its network namespaces and firewall chains (a restart reuses
        # them); this one is gone for good, so its tag is cleaned as `faas engine stop --clean` does.
        subprocess.run(["node", str(ENGINE_MAIN), "clean"], env={**os.environ, "FAAS_STATE_DIR": self.state_dir,
                       "FAAS_NET_TAG": self.tag, "FAAS_SUBNET": self.subnet, "FAAS_SSH_PORT": "off"}, capture_output=True, timeout=120)
        shutil.rmtree(self.state_dir, ignore_errors=True)


def run_schemathesis(engine: Engine, mode: str, budget: int, out: Path) -> dict[str, Any]:
    """One schemathesis run; returns its counts and failures (from the ndjson report)."""
    report_dir = out / mode
    report_dir.mkdir(parents=True, exist_ok=True)
    config = (HERE / "schemathesis.toml").read_text()
    if mode == "key":
        config += f'\n[auth.openapi.bearerAuth]\nbearer = "${{FAAS_SCHEMATHESIS_KEY}}"\n'
    config_path = report_dir / "schemathesis.toml"
    config_path.write_text(config)
    tolerated = report_dir / "tolerated.jsonl"
    env = {
        **os.environ,
        "FAAS_SCHEMATHESIS_KEY": engine.key,
        "FAAS_SCHEMATHESIS_MODE": mode,
        "FAAS_SCHEMATHESIS_TOLERATED": str(tolerated),
        "SCHEMATHESIS_HOOKS": "hooks",
        "PYTHONDONTWRITEBYTECODE": "1",  # no __pycache__ in the checkout
        "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    cmd = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config_path), "run", str(SPEC),
        "--url", engine.endpoint,
        "--checks", "all",
        "--phases", "examples,coverage,fuzzing,stateful",
        "--max-time", str(budget),
        "--report", "ndjson,junit",
        "--report-dir", str(report_dir),
        "--no-color",
    ]
    print(f"\n==> schemathesis, {'with the engine key' if mode == 'key' else 'without a key'} (budget {budget} s)", flush=True)
    t0 = time.monotonic()
    # The budget is schemathesis's own; the kill is for a hang (a request cannot outlive 60 s).
    try:
        # In the report directory: schemathesis and hypothesis keep their caches in the cwd.
        proc = subprocess.run(cmd, env=env, cwd=report_dir, timeout=budget + 240, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        output, code = proc.stdout, proc.returncode
    except subprocess.TimeoutExpired as err:
        output, code = (err.stdout or b"").decode() if isinstance(err.stdout, bytes) else (err.stdout or ""), -1
    (report_dir / "output.txt").write_text(output)
    # The summary schemathesis prints: the reproduction of each failure is in output.txt.
    print(output[-6000:] if code != 0 else output[-1500:])
    result = summarize(report_dir, tolerated)
    result.update(mode=mode, exit=code, seconds=round(time.monotonic() - t0))
    return result


def summarize(report_dir: Path, tolerated: Path) -> dict[str, Any]:
    cases = 0
    failures: dict[tuple[str, str, str], int] = collections.Counter()
    errors: list[str] = []
    for ndjson in report_dir.glob("*.ndjson"):
        for line in ndjson.read_text().splitlines():
            event = json.loads(line)
            kind, value = next(iter(event.items()))
            if kind == "NonFatalError":
                errors.append(f"{value.get('label')}: {value.get('value', {}).get('message', '')[:200]}")
            if kind != "ScenarioFinished":
                continue
            recorder = value["recorder"]
            cases += len(recorder.get("interactions", {}))
            for checks in recorder.get("checks", {}).values():
                for check in checks:
                    if check["status"] != "success":
                        failure = (check.get("failure_info") or {}).get("failure", {})
                        failures[(recorder["label"], check["name"], failure.get("title", ""))] += 1
    known = collections.Counter()
    if tolerated.exists():
        for line in tolerated.read_text().splitlines():
            item = json.loads(line)
            known[(item["owner"], item["what"])] += 1
    return {"cases": cases, "failures": failures, "errors": errors, "tolerated": known}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=int, default=int(os.environ.get("FAAS_SCHEMATHESIS_BUDGET", "240")),
                        help="seconds of schemathesis in total (4/5 with the key, 1/5 without)")
    parser.add_argument("--keep", help="keep the reports in this directory")
    args = parser.parse_args()
    if not ENGINE_MAIN.exists():
        print(f"engine not built at {ENGINE_MAIN}: run `npm run build --workspaces` first", file=sys.stderr)
        return 1
    out = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="faas-test-schemathesis-reports-"))
    out.mkdir(parents=True, exist_ok=True)
    engine = Engine(out)
    results = []
    leftovers: list[str] = []
    try:
        results.append(run_schemathesis(engine, "key", max(30, args.budget * 4 // 5), out))
        results.append(run_schemathesis(engine, "anonymous", max(15, args.budget // 5), out))
        leftovers = engine.delete_everything()
    finally:
        engine.stop()
        server_errors = (out / "engine.log").read_text().count('"level":"error"') if (out / "engine.log").exists() else 0
    failed = False
    print("\n==> schemathesis summary")
    for r in results:
        total = sum(r["failures"].values())
        print(f"{r['mode']:>9}: {r['cases']} cases in {r['seconds']} s, {total} failing checks"
              f" ({len(r['failures'])} distinct), {sum(r['tolerated'].values())} tolerated, schemathesis exit {r['exit']}")
        for (label, check, title), n in sorted(r["failures"].items()):
            print(f"           FAIL {label}: {check} ({title}) x{n}")
        for (owner, what), n in sorted(r["tolerated"].items()):
            why = "not a defect" if owner == "schemathesis" else f"known, being fixed by the {owner} helper"
            print(f"           {why}: {what} x{n}")
        for error in r["errors"]:
            print(f"           ERROR {error}")
        failed |= bool(r["failures"]) or bool(r["errors"]) or r["exit"] not in (0, 1) or (r["exit"] == 1 and not r["failures"])
    if leftovers:
        print(f"left behind after clean-up: {', '.join(leftovers)}")
        failed = True
    print(f"engine log: {server_errors} error lines")
    if args.keep:
        print(f"reports: {out}")
    else:
        shutil.rmtree(out, ignore_errors=True)
    print("schemathesis: FAILED" if failed else "schemathesis: passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
