"""The app's routers are imported by name in code: each loads, and an intake-only API never loads the rest."""

from __future__ import annotations

import subprocess
import sys

from fastapi import APIRouter

from webhook.app import INTAKE_ROUTERS, ROUTERS


def test_every_router_loads_from_its_module() -> None:
    assert list(ROUTERS)[: len(INTAKE_ROUTERS)] == list(INTAKE_ROUTERS)
    for name, load in ROUTERS.items():
        router = load()
        assert isinstance(router, APIRouter) and router.routes, name
        assert sys.modules[name].router is router


def test_importing_the_app_loads_no_router() -> None:
    code = "import sys, webhook.app; print(sorted(m for m in sys.modules if m.endswith(('_routes', '.intake', '.health'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
