"""Finds every fenced code block in the project's user-facing Markdown and what to do with it.

The files: README.md, sdk/typescript/README.md, sdk/python/README.md and docs/**/*.md — new files
and new blocks are picked up without registering them anywhere. sdk/python/tests/test_docs_snippets.py
runs the blocks against a real engine; `python3 tests/docs/snippets.py` lists them.

A block is run according to its language (the word after the opening fence):
  sh, bash, shell   bash -euo pipefail, from the repository root, `faas` on PATH
  ts, typescript    type-checked with the repository's TypeScript, then run by node (an ES module,
                    top-level await allowed, `@faas/sdk` resolves to this workspace)
  python, py        python3 with this checkout's faas_sdk
  json              parsed; with `<!-- schema: NAME -->` validated against components/schemas/NAME
                    of spec/openapi.yaml
Any other language (or none) must be marked. HTML comments directly above the fence (only
whitespace between them and it) annotate a block:
  <!-- not-run: REASON -->        not executed (output, illustration, a 10-minute command …); the
                                  reason is required. Still syntax-checked where the language
                                  allows (bash -n, TypeScript transpile, compile(), JSON parse).
  <!-- setup: NAME … -->          prepend tests/docs/setup/NAME.<ext> (same language as the block)
  <!-- setup                      prepend the code inside the comment (invisible on the rendered
  CODE                            page, so it can define the `client`, `instance` or `$INST` a
  -->                             fragment uses)
  <!-- expect: TEXT -->           the block's stdout must contain TEXT
  <!-- schema: NAME -->           (json) validate against the spec's components/schemas/NAME
  <!-- leaves: nothing running --> no instance the block started may still be running after it
A test fails when a block is neither runnable nor marked, or an annotation is unknown.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

LANGUAGES = {
    "sh": "sh", "bash": "sh", "shell": "sh",
    "ts": "ts", "typescript": "ts",
    "python": "py", "py": "py",
    "json": "json",
}
SETUP_EXTENSIONS = {"sh": "sh", "ts": "ts", "py": "py"}
SETUP_DIR = REPO / "tests" / "docs" / "setup"
KNOWN_KEYS = ("not-run", "setup", "expect", "schema", "leaves")

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")
_COMMENT = re.compile(r"<!--(.*?)-->", re.S)


def doc_files() -> list[Path]:
    files = [REPO / "README.md", REPO / "sdk/typescript/README.md", REPO / "sdk/python/README.md"]
    files += sorted((REPO / "docs").rglob("*.md"))
    return [f for f in files if f.exists()]


@dataclass
class Block:
    path: Path
    line: int                      # 1-based line of the opening fence
    info: str                      # the fence's language word as written
    code: str
    not_run: str | None = None     # the reason, when marked
    setup_names: list[str] = field(default_factory=list)
    setup_code: list[str] = field(default_factory=list)
    expect: list[str] = field(default_factory=list)
    schema: str | None = None
    leaves_nothing_running: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def lang(self) -> str | None:
        return LANGUAGES.get(self.info.lower())

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.not_run is None and self.lang is not None

    def setup(self) -> str:
        """Named set-ups, then inline set-up code, in the order written."""
        parts = []
        for name in self.setup_names:
            parts.append((SETUP_DIR / f"{name}.{SETUP_EXTENSIONS[self.lang or 'sh']}").read_text())
        parts += self.setup_code
        return "\n".join(parts)


def _annotate(block: Block, comment: str) -> None:
    body = comment.strip()
    if body.startswith("setup\n") or body == "setup":
        block.setup_code.append(body[len("setup"):].strip("\n"))
        return
    key, sep, value = body.partition(":")
    key, value = key.strip(), value.strip()
    if not sep or key not in KNOWN_KEYS:
        block.problems.append(f"unknown annotation <!--{comment}--> (known: {', '.join(KNOWN_KEYS)}; see tests/docs/snippets.py)")
    elif key == "not-run":
        if not value:
            block.problems.append("<!-- not-run: --> needs a reason, e.g. <!-- not-run: output -->")
        block.not_run = value or "?"
    elif key == "setup":
        for name in value.split():
            ext = SETUP_EXTENSIONS.get(block.lang or "")
            if not ext or not (SETUP_DIR / f"{name}.{ext}").exists():
                block.problems.append(f"<!-- setup: {name} -->: no tests/docs/setup/{name}.{ext or '<ext>'}")
            block.setup_names.append(name)
    elif key == "expect":
        block.expect.append(value)
    elif key == "leaves":
        if value != "nothing running":
            block.problems.append("the only <!-- leaves: … --> is <!-- leaves: nothing running -->")
        block.leaves_nothing_running = True
    else:
        block.schema = value


def _comments_above(lines: list[str], fence_index: int) -> list[str]:
    """The HTML comments that end right above a fence (blank lines allowed), nearest last."""
    text = "\n".join(lines[:fence_index]).rstrip()
    found: list[str] = []
    while text.endswith("-->"):
        start = text.rfind("<!--")
        if start < 0:
            break
        match = _COMMENT.fullmatch(text[start:])
        if not match:
            break
        found.insert(0, match.group(1))
        text = text[:start].rstrip()
    return found


def extract(path: Path) -> list[Block]:
    lines = path.read_text().split("\n")
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence = match.group("fence")
        end = i + 1
        while end < len(lines) and not re.match(rf"^ {{0,3}}{fence[0]}{{{len(fence)},}}\s*$", lines[end]):
            end += 1
        block = Block(path, i + 1, match.group("info"), "\n".join(lines[i + 1:end]) + "\n")
        for comment in _comments_above(lines, i):
            _annotate(block, comment)
        if block.not_run is None and block.lang is None:
            block.problems.append(
                f"a ```{block.info or '(no language)'} block is neither run nor marked: give it a runnable language "
                f"({', '.join(sorted(LANGUAGES))}) or put <!-- not-run: REASON --> right above it")
        blocks.append(block)
        i = end + 1
    return blocks


def all_blocks() -> list[Block]:
    return [block for path in doc_files() for block in extract(path)]


if __name__ == "__main__":
    blocks = all_blocks()
    for b in blocks:
        status = f"not-run ({b.not_run})" if b.not_run is not None else ("run" if b.runs else "UNMARKED")
        print(f"{b.id:45} {b.info or '-':8} {status}{'  PROBLEM: ' + '; '.join(b.problems) if b.problems else ''}")
    run = sum(b.runs for b in blocks)
    marked = sum(b.not_run is not None for b in blocks)
    print(f"{len(blocks)} blocks: {run} run, {marked} marked not-run, {len(blocks) - run - marked} unmarked")
    sys.exit(1 if any(b.problems for b in blocks) else 0)
