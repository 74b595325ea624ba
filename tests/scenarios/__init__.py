"""The scenario suite: incident worlds and what a good triage must rank in its top 3 for each.

:func:`all_scenarios` is the loader; :mod:`tests.scenarios.world` builds a world, :mod:`tests.scenarios.runner`
triages it and scores the ranking. ``python -m bench.scenarios`` prints the figures; ``tests/scenarios`` asserts them.
"""

from __future__ import annotations

from tests.scenarios.model import Scenario


def all_scenarios() -> list[Scenario]:
    """Every scenario, in a stable order; names are unique."""
    from tests.scenarios import (
        catalog_alerting,
        catalog_changes,
        catalog_crossing,
        catalog_drift,
        catalog_fresh,
        catalog_neighbourhood,
        catalog_outages,
        catalog_resources,
    )

    scenarios = [
        *catalog_resources.SCENARIOS,
        *catalog_changes.SCENARIOS,
        *catalog_outages.SCENARIOS,
        *catalog_alerting.SCENARIOS,
        *catalog_neighbourhood.SCENARIOS,
        *catalog_drift.SCENARIOS,
        *catalog_crossing.SCENARIOS,
        *catalog_fresh.SCENARIOS,
    ]
    names = [s.name for s in scenarios]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"scenario names must be unique: {duplicates}")
    return scenarios


def select(names: list[str] | None) -> list[Scenario]:
    """The scenarios named (all when ``names`` is empty); an unknown name is an error that lists the known ones."""
    scenarios = all_scenarios()
    if not names:
        return scenarios
    by_name = {s.name: s for s in scenarios}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"unknown scenario(s) {unknown}; known: {sorted(by_name)}")
    return [by_name[n] for n in names]
