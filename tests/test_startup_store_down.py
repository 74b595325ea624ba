"""A report store that is unreachable at start-up: ``serve`` and ``worker`` exit with status 2 and one sentence on
stderr naming the store (without its password), not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.procs import free_port

pytestmark = pytest.mark.slow

PASSWORD = "s3cret-db-password"


def test_an_unreachable_postgres_at_start_up_is_one_line(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "WEBHOOK_TOKEN": "test-webhook-token",
        "DATABASE_URL": f"postgresql://triage:{PASSWORD}@127.0.0.1:{port}/triage",
        "CHROMA_DIR": str(tmp_path / "chroma"),
    }
    binary = str(Path(sys.executable).parent / "sre-triage")
    procs = {
        name: subprocess.Popen([binary, *args], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for name, args in {"worker": ["worker"], "serve": ["serve", "--port", str(free_port())]}.items()
    }
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=60)
        text = (out + err).decode(errors="replace")
        lines = [line for line in text.splitlines() if line.strip()]
        assert proc.returncode == 2, (name, text)
        assert len(lines) == 1, (name, text)
        assert lines[0].startswith("sre-triage: cannot connect to the report store at postgresql://127.0.0.1:"), text
        assert "Traceback" not in text and PASSWORD not in text
