"""Every fenced block of README.md, the SDK READMEs and docs/**/*.md is run or explicitly marked.

The blocks come from tests/docs/snippets.py (one extractor; how to mark a block or give it set-up
is written there and in CONTRIBUTING.md "Docs snippets"). Runnable blocks run against this
session's one real engine, as a reader would run them on the engine's host: the CLI and both SDKs
find the engine through FAAS_STATE_DIR's credentials.json (no key or endpoint in the environment).
The only rewriting: the default state directory `/var/lib/faas` and the default endpoint
`localhost:7440` / `127.0.0.1:7440` become the test engine's, so a block never touches the host's
own engine. Whatever instances a block leaves running are deleted after it.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import jsonschema
import pytest
import yaml

from faas_sdk import FaaSClient

from .conftest import REPO, Engine

sys.path.insert(0, str(REPO / "tests" / "docs"))
from snippets import Block, all_blocks, extract  # noqa: E402

BLOCKS = all_blocks()
RUN = [b for b in BLOCKS if b.runs]
MARKED = [b for b in BLOCKS if b.not_run is not None]
TSC = REPO / "node_modules" / "typescript" / "bin" / "tsc"
BLOCK_TIMEOUT = 300


def _ids(block: Block) -> str:
    return f"{block.id}[{block.info}]"


def test_the_extractor_finds_the_documented_blocks() -> None:
    # A broken extractor that finds nothing would make every other test here pass vacuously.
    found = {b.path.relative_to(REPO).as_posix() for b in BLOCKS}
    assert {"README.md", "sdk/typescript/README.md", "sdk/python/README.md"} <= found
    assert len(RUN) >= 10 and any(b.lang == "ts" for b in RUN) and any(b.lang == "py" for b in RUN)


def test_the_extractor_flags_what_is_neither_run_nor_marked(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "```text\nan unmarked diagram\n```\n\n"
        "<!-- not-run: output -->\n\n```text\nmarked\n```\n"
        "<!-- not-run: -->\n```\nno reason\n```\n"
        "<!-- nto-run: typo -->\n```sh\necho\n```\n"
        "<!-- setup: client -->\n<!-- setup\nconst x = 1;\n-->\n<!-- expect: 1 -->\n```ts\nconsole.log(x);\n```\n"
        "<!-- setup: no-such-setup -->\n````py\n```\n````\n"
    )
    unmarked, marked, no_reason, typo, ts_block, missing_setup = extract(doc)
    assert unmarked.problems and not unmarked.runs
    assert not marked.problems and marked.not_run == "output"
    assert no_reason.problems and typo.problems and typo.runs
    assert not ts_block.problems and ts_block.setup_names == ["client"] and ts_block.expect == ["1"]
    assert ts_block.setup().endswith("const x = 1;") and "new setupSdk.FaaSClient()" in ts_block.setup()
    assert missing_setup.problems and missing_setup.code == "```\n"


@pytest.mark.parametrize("block", BLOCKS, ids=_ids)
def test_block_is_run_or_marked(block: Block) -> None:
    assert not block.problems, f"{block.id}: " + "; ".join(block.problems)


# -- the environment a block runs in ---------------------------------------------------------


class DocsEnv:
    def __init__(self, engine: Engine, root: Path) -> None:
        self.engine = engine
        self.root = root
        bin_dir = root / "bin"
        bin_dir.mkdir()
        faas = bin_dir / "faas"   # what install.sh links to /usr/local/bin/faas, from this checkout
        faas.write_text(f'#!/bin/sh\nexec node "{REPO}/sdk/typescript/dist/cli/main.js" "$@"\n')
        faas.chmod(0o755)
        sudo = bin_dir / "sudo"     # a root Debian box has none: a docs command must not need it
        sudo.write_text("#!/bin/sh\necho 'sudo: not found (the docs run as root on Debian 12, where there is no sudo)' >&2\nexit 127\n")
        sudo.chmod(0o755)
        self.env = {k: v for k, v in os.environ.items() if k not in ("FAAS_API_KEY", "FAAS_ENDPOINT", "FAAS_PORT", "FAAS_HOST")}
        self.env.update(
            FAAS_STATE_DIR=engine.state_dir,
            PATH=f"{bin_dir}:{self.env.get('PATH', '')}",
            PYTHONPATH=str(REPO / "sdk" / "python"),
        )

    def rewrite(self, code: str) -> str:
        hostport = self.engine.endpoint.removeprefix("http://")
        code = re.sub(r"\b(localhost|127\.0\.0\.1):7440\b", hostport, code)
        return code.replace("/var/lib/faas", self.engine.state_dir)


@pytest.fixture(scope="module")
def docs_env(engine: Engine) -> Iterator[DocsEnv]:
    root = Path(tempfile.mkdtemp(prefix="faas-docs-"))
    try:
        yield DocsEnv(engine, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def ts_built(docs_env: DocsEnv) -> Iterator[dict[str, tuple[str, Path]]]:
    """Every runnable ts block type-checked and compiled in one tsc run: {block id: (tsc errors, .js)}."""
    build = Path(tempfile.mkdtemp(prefix="docs-", dir=_mkdir(REPO / "sdk" / "typescript" / "build-test")))
    files: dict[str, str] = {}
    for n, block in enumerate(b for b in RUN if b.lang == "ts"):
        name = f"block{n}.ts"
        source = docs_env.rewrite(block.setup() + "\n" + block.code)
        if not re.search(r"^\s*(import|export)\b", source, re.M):
            source += "\nexport {};\n"   # a module, so top-level await is allowed
        (build / name).write_text(source)
        files[name] = block.id
    (build / "package.json").write_text('{"type": "module"}\n')
    (build / "tsconfig.json").write_text(json.dumps({
        "compilerOptions": {
            "target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext", "strict": True,
            "lib": ["ES2022", "esnext.disposable", "DOM"], "types": ["node"], "skipLibCheck": True,
            "outDir": ".", "rootDir": ".", "noEmitOnError": False,
        },
        "files": sorted(files),
    }))
    done = subprocess.run(["node", str(TSC), "-p", str(build)], capture_output=True, text=True, timeout=300)
    errors: dict[str, str] = {}
    for line in (done.stdout + done.stderr).splitlines():
        name = line.split("(", 1)[0]
        if name in files:
            errors[files[name]] = errors.get(files[name], "") + line + "\n"
    try:
        yield {block_id: (errors.get(block_id, ""), build / name.replace(".ts", ".js")) for name, block_id in files.items()}
    finally:
        shutil.rmtree(build, ignore_errors=True)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _run(argv: list[str], docs_env: DocsEnv, block: Block, cwd: Path = REPO) -> None:
    done = subprocess.run(argv, cwd=cwd, env=docs_env.env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT)
    output = f"--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"
    assert done.returncode == 0, f"{block.id} exited {done.returncode}\n{output}"
    for text in block.expect:
        assert text in done.stdout, f"{block.id}: stdout lacks {text!r}\n{output}"


def _spec_validator(name: str) -> jsonschema.protocols.Validator:
    spec = yaml.safe_load((REPO / "spec" / "openapi.yaml").read_text())
    assert name in spec["components"]["schemas"], f"<!-- schema: {name} -->: no components/schemas/{name} in spec/openapi.yaml"
    schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize("block", RUN, ids=_ids)
def test_block_runs(block: Block, engine: Engine, docs_env: DocsEnv, request: pytest.FixtureRequest) -> None:
    if block.lang == "json":
        data = json.loads(block.code)
        if block.schema:
            _spec_validator(block.schema).validate(data)
        return
    with FaaSClient(engine.api_key, endpoint=engine.endpoint) as client:
        before = {i.id for i in client.instances.list()}
        try:
            if block.lang == "ts":
                errors, js = request.getfixturevalue("ts_built")[block.id]
                assert not errors, f"{block.id} does not type-check (tsc):\n{errors}"
                _run(["node", str(js)], docs_env, block)
            else:
                suffix = {"sh": ".sh", "py": ".py"}[block.lang or ""]
                script = docs_env.root / f"block{suffix}"
                script.write_text(docs_env.rewrite(block.setup() + "\n" + block.code))
                argv = ["bash", "-euo", "pipefail", str(script)] if block.lang == "sh" else [sys.executable, str(script)]
                _run(argv, docs_env, block)
            if block.leaves_nothing_running:
                left = [i.id for i in client.instances.list(state="ready") if i.id not in before]
                assert not left, f"{block.id} says it stops what it starts, but left {left} running"
        finally:
            for inst in client.instances.list():
                if inst.id not in before:
                    client.instances.delete(inst.id)


@pytest.mark.parametrize("block", [b for b in MARKED if b.lang], ids=_ids)
def test_marked_block_still_parses(block: Block, tmp_path: Path) -> None:
    """A block that is not run still may not be broken syntax (its language allowing a check)."""
    if block.lang == "sh":
        done = subprocess.run(["bash", "-n"], input=block.code, capture_output=True, text=True)
        assert done.returncode == 0, f"{block.id}: bash -n: {done.stderr}"
    elif block.lang == "py":
        ast.parse(block.code, filename=block.id)
    elif block.lang == "json":
        json.loads(block.code)
    elif block.lang == "ts":
        script = (
            "const ts = require(process.argv[1]); const src = require('fs').readFileSync(0, 'utf8');"
            "const out = ts.transpileModule(src, {reportDiagnostics: true, compilerOptions: {module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022}});"
            "for (const d of out.diagnostics) console.log(ts.flattenDiagnosticMessageText(d.messageText, '\\n'));"
            "process.exit(out.diagnostics.length ? 1 : 0);"
        )
        done = subprocess.run(["node", "-e", script, str(REPO / "node_modules" / "typescript")], input=block.code, capture_output=True, text=True)
        assert done.returncode == 0, f"{block.id}: TypeScript syntax: {done.stdout}{done.stderr}"


# -- docs/api-design.md says only what the contract has ----------------------------------------

_METHODS = "GET|POST|PUT|PATCH|DELETE"
_ROUTE = re.compile(rf"\b((?:{_METHODS})(?:\|(?:{_METHODS}))*) (/v1/[A-Za-z0-9_{{}}/|.\-]*)")


def _spec_routes() -> set[tuple[str, str]]:
    spec = yaml.safe_load((REPO / "spec" / "openapi.yaml").read_text())
    return {(m.upper(), re.sub(r"\{[^}]+\}", "{}", p)) for p, ops in spec["paths"].items() for m in ops if m.upper() in _METHODS.split("|")}


def test_api_design_names_only_routes_the_spec_has() -> None:
    # It once described PATCH routes that never existed (issue 16).
    routes, text = _spec_routes(), (REPO / "docs" / "api-design.md").read_text()
    named, missing = 0, []
    for match in _ROUTE.finditer(text):
        paths = [""]
        for segment in match.group(2).rstrip(".").split("/")[1:]:   # `stop|pause` in a segment: each
            paths = [f"{p}/{alt}" for p in paths for alt in segment.split("|")]
        for method in match.group(1).split("|"):
            for path in paths:
                named += 1
                if (method, re.sub(r"\{[^}]+\}", "{}", path)) not in routes:
                    missing.append(f"{method} {path}")
    assert named > 50 and not missing, f"docs/api-design.md names routes spec/openapi.yaml lacks: {missing}"
    if not any(method == "PATCH" for method, _ in routes):
        assert not re.search(r"(?<!no )\bPATCH\b", text), "docs/api-design.md mentions PATCH, which no route has"


def test_api_design_id_prefixes_are_the_specs() -> None:
    spec_text = (REPO / "spec" / "openapi.yaml").read_text()
    conventions = (REPO / "docs" / "api-design.md").read_text().split("\n\n", 2)[1]
    named = set(re.findall(r"`([a-z]+)_`", conventions))
    in_spec = set(re.findall(r"\^\(?([a-z|]+)\)?_\[a-z0-9\]", spec_text))
    in_spec = {p for group in in_spec for p in group.split("|")}
    assert named - {"req"} <= in_spec and in_spec <= named, (named, in_spec)
