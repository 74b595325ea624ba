"""The topology file: hosts, their dependencies and aliases, checked once at start-up with errors that say where."""

from __future__ import annotations

from pathlib import Path

import pytest

from triage.settings import StartupError, load_settings
from triage.topology import Topology, TopologyError

VALID = """
hosts:
  nextcloud:
    depends_on: [db01, NAS01]
    aliases: [nextcloud.lan, 10.0.0.21]
  nas01:
    aliases: [truenas]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "topology.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_label_value_resolves_to_its_host_by_any_of_its_names(tmp_path: Path) -> None:
    topology = Topology.load(_write(tmp_path, VALID))
    assert topology.resolve(["10.0.0.21"]) == "nextcloud"
    assert topology.resolve(["NextCloud.lan."]) == "nextcloud"
    assert topology.resolve(["truenas.home.arpa"]) == "nas01"  # its short name is an alias
    assert topology.resolve(["unknown", "nextcloud"]) == "nextcloud"
    assert topology.resolve(["unknown"]) is None


def test_dependencies_and_names_are_case_insensitive(tmp_path: Path) -> None:
    topology = Topology.load(_write(tmp_path, VALID))
    assert topology.depends_on("NEXTCLOUD") == ("db01", "nas01")
    assert topology.depends_on("db01") == ()
    assert set(topology.names("nas01")) == {"nas01", "truenas"}
    # an undeclared dependency still has its own name and short name
    assert topology.names("db01.lan") == ("db01.lan", "db01")


def test_the_host_mapping_may_stand_at_the_top_level() -> None:
    assert Topology.parse({"web": {"depends_on": "db"}}).depends_on("web") == ("db",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hosts:\n  web:\n    depend_on: [db]\n", "unknown key(s) ['depend_on']"),
        ("hosts:\n  web:\n    depends_on: [web]\n", "depends on itself"),
        ("hosts:\n  a:\n    aliases: [x]\n  b:\n    aliases: [X]\n", "alias 'x' is already a name of 'a'"),
        ("hosts:\n  web:\n    aliases: {a: 1}\n", "expected a list of names"),
        ("hosts: [web, db]\n", "'hosts' must be a mapping"),
        ("hosts: {}\nextra: 1\n", "unknown top-level key(s) ['extra']"),
        ("hosts:\n  web: [oops\n", "not valid YAML at line"),
    ],
)
def test_a_broken_file_is_refused_with_a_sentence_naming_the_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(TopologyError) as raised:
        Topology.load(_write(tmp_path, text))
    assert message in str(raised.value)
    assert str(tmp_path) in str(raised.value)


def test_a_missing_file_stops_start_up(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TOPOLOGY_FILE", str(tmp_path / "nope.yaml"))
    with pytest.raises(StartupError) as raised:
        load_settings()
    assert "TOPOLOGY_FILE" in str(raised.value) and "cannot be read" in str(raised.value)


def test_a_valid_file_is_accepted_at_start_up(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = _write(tmp_path, VALID)
    monkeypatch.setenv("TOPOLOGY_FILE", str(path))
    assert load_settings().knowledge.topology_file == path
