"""The layering of docs/architecture.md: imports point down only (webhook → triage → reports → tools)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"webhook", "triage", "reports", "tools"}
ALLOWED = {
    "webhook": {"webhook", "triage", "reports", "tools"},
    "triage": {"triage", "reports", "tools"},
    "reports": {"reports", "tools"},
    "tools": {"tools"},
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_packages_import_only_the_layers_below_them(package: str) -> None:
    violations = []
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = imported_packages(path) - ALLOWED[package]
        if bad:
            violations.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not violations, "\n".join(violations)


# Inside triage/: the concepts and what each may use. "shared" is the modules at the top of triage/ (settings,
# constants, the clients of a triage, the source registry, logs, topology). The pipeline and the analysis do not know
# each other: the composition root (triage/deps.py) hands the analyser to the pipeline.
TRIAGE_ALLOWED = {
    "cli": {"cli", "worker", "pipeline", "analysis", "agent", "notify", "shared"},
    "worker": {"worker", "pipeline", "analysis", "notify", "shared"},
    "agent": {"agent", "analysis", "shared"},
    "pipeline": {"pipeline", "shared"},
    "analysis": {"analysis", "shared"},
    "notify": {"notify", "shared"},
}
# the shared modules that assemble or validate what the concepts provide
SHARED_MAY_IMPORT = {
    "deps.py": {"analysis", "pipeline"},  # the composition root of a triage
    "settings.py": {"notify"},  # NOTIFY_URLS are checked by the notifier that will send to them
}
CONCEPTS = set(TRIAGE_ALLOWED)


def concept_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "triage":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in CONCEPTS else "shared"


def triage_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found.update(c for c in map(concept_of, names) if c is not None)
    return found


def test_triage_concepts_import_only_what_they_build_on() -> None:
    violations = []
    for path in sorted((ROOT / "triage").rglob("*.py")):
        relative = path.relative_to(ROOT / "triage")
        concept = relative.parts[0] if len(relative.parts) > 1 else "shared"
        if concept == "shared":
            allowed = {"shared", *SHARED_MAY_IMPORT.get(relative.name, set())}
        else:
            allowed = TRIAGE_ALLOWED[concept]
        bad = triage_imports(path) - allowed
        if bad:
            violations.append(f"triage/{relative} imports {sorted(bad)}")
    assert not violations, "\n".join(violations)


def test_every_triage_concept_is_a_package_with_a_rule() -> None:
    packages = {p.name for p in (ROOT / "triage").iterdir() if (p / "__init__.py").is_file()}
    assert packages == CONCEPTS
