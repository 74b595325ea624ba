"""The app's routers are imported by name in code: each loads, and an intake-only API never loads the rest."""

from __future__ import annotations

import subprocess
import sys

from fastapi import APIRouter

from webhook.app import all_routers, intake_routers


def test_every_router_comes_from_the_module_it_is_named_after() -> None:
    routers = all_routers()
    assert list(routers) == [
        "webhook.intake",
        "webhook.health",
        "webhook.login_routes",
        "webhook.reports_routes",
        "webhook.digest_routes",
        "webhook.ask_routes",
    ]
    assert list(intake_routers()) == list(routers)[:2]
    for name, router in routers.items():
        assert isinstance(router, APIRouter) and router.routes, name
        assert sys.modules[name].router is router


def test_an_intake_only_api_loads_no_other_router() -> None:
    code = (
        "import sys; from webhook.app import intake_routers; intake_routers(); "
        "print(sorted(m for m in sys.modules if m.endswith('_routes')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
