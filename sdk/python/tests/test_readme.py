"""The README's quick start runs as written (its ```python block, against the test engine)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from .conftest import Engine

README = Path(__file__).resolve().parents[1] / "README.md"


def test_quick_start_runs(engine: Engine, tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) == 1, "the README should have exactly one ```python (runnable) block"
    script = tmp_path / "quick_start.py"
    script.write_text(blocks[0])
    env = {**os.environ, "FAAS_API_KEY": engine.api_key, "FAAS_ENDPOINT": engine.endpoint}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "0 42" in done.stdout and "1\n2\n3\n" in done.stdout
