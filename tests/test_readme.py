"""Docs that can drift are checked: every setting is in the README's configuration table."""

from __future__ import annotations

import re
from pathlib import Path

from triage.settings import all_env_names

README = Path(__file__).resolve().parent.parent / "README.md"


def documented_settings() -> set[str]:
    names = set()
    for line in README.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\|\s*`([A-Z][A-Z0-9_]+)`\s*\|", line)
        if match:
            names.add(match.group(1))
    return names


def test_every_setting_is_in_the_readme_configuration_table() -> None:
    missing = sorted(set(all_env_names()) - documented_settings())
    assert not missing, f"add these settings to the README configuration table: {missing}"


def test_the_readme_table_names_no_setting_that_does_not_exist() -> None:
    stale = sorted(documented_settings() - set(all_env_names()))
    assert not stale, f"the README documents settings that do not exist: {stale}"


def test_the_readme_quick_start_is_the_ci_test_command() -> None:
    text = README.read_text(encoding="utf-8")
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "./scripts/test.sh" in text and "./scripts/run.sh" in text
    assert "./scripts/test.sh" in ci
