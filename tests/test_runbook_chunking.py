"""Markdown and Ansible chunking: what a search result can point at."""

from __future__ import annotations

import pytest

from tools.runbooks.ansible import chunk_ansible
from tools.runbooks.chunking import ChunkingError, chunk_markdown, github_slug
from tools.runbooks.ingest import chunk_file

RUNBOOK = """---
title: Disk filling up
alerts:
  - HostDiskFull
  - HostOutOfInodes
severity: warning
tags: [disk, node]
labels:
  mountpoint: /var
---

# Disk filling up

Intro paragraph.

## Diagnosis

Check the usage first.

```promql
# a heading-looking line inside code must not start a section
node_filesystem_avail_bytes / node_filesystem_size_bytes

## still code
```

### Inode exhaustion (ext4)

Run `df -i`.

## Diagnosis

A second section with the same heading.
"""


def test_sections_carry_title_heading_path_and_github_anchor() -> None:
    chunks = chunk_markdown(RUNBOOK, "runbooks/disk.md")
    by_section = {c.section: c for c in chunks}
    inode = by_section["Inode exhaustion (ext4)"]
    assert inode.title == "Disk filling up"
    assert inode.section_path == ["Disk filling up", "Diagnosis", "Inode exhaustion (ext4)"]
    assert inode.anchor == "inode-exhaustion-ext4"
    assert [c.anchor for c in chunks if c.section == "Diagnosis"] == ["diagnosis", "diagnosis-1"]


def test_code_fence_stays_whole_and_its_hash_lines_are_not_headings() -> None:
    chunks = chunk_markdown(RUNBOOK, "runbooks/disk.md")
    diagnosis = next(c for c in chunks if c.anchor == "diagnosis")
    assert "```promql" in diagnosis.text and "## still code\n```" in diagnosis.text
    assert "still code" not in {c.section for c in chunks}


def test_front_matter_becomes_metadata_and_search_text_names_the_alerts() -> None:
    chunk = chunk_markdown(RUNBOOK, "runbooks/disk.md")[0]
    assert chunk.alerts == ["HostDiskFull", "HostOutOfInodes"]
    assert chunk.tags == ["disk", "node"]
    assert chunk.severity == "warning"
    assert chunk.labels == {"mountpoint": "/var"}
    assert "---" not in chunk.text and "HostDiskFull" not in chunk.text
    assert "Alerts: HostDiskFull, HostOutOfInodes" in chunk.search_text
    assert chunk.metadata()["alerts"] == "HostDiskFull\nHostOutOfInodes"


def test_file_without_headings_is_one_section_named_after_the_file() -> None:
    chunks = chunk_markdown("Just some notes.\n\nAbout restarting the NAS.\n", "notes/nas-notes.md")
    assert len(chunks) == 1
    assert (chunks[0].title, chunks[0].section, chunks[0].anchor) == ("nas-notes", "nas-notes", "")
    assert "About restarting the NAS." in chunks[0].text


def test_huge_section_is_split_at_paragraph_boundaries_and_keeps_its_heading() -> None:
    paragraphs = [f"Paragraph {i} " + "word " * 60 for i in range(12)]
    text = "# Big\n\n## Remediation\n\n" + "\n\n".join(paragraphs) + "\n"
    chunks = chunk_markdown(text, "runbooks/big.md", max_chars=800)
    assert len(chunks) > 3
    assert all(c.section == "Remediation" and c.anchor == "remediation" for c in chunks)
    for chunk in chunks:
        assert len(chunk.text) <= 800
        # every piece starts and ends on a paragraph boundary
        assert chunk.text.startswith("Paragraph ") and chunk.text.rstrip().endswith("word")
    assert "".join(c.text for c in chunks).count("Paragraph") == 12
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


def test_oversized_code_block_is_never_cut() -> None:
    code = "```sh\n" + "\n".join(f"echo line {i}" for i in range(200)) + "\n```"
    chunks = chunk_markdown(f"# T\n\n## Steps\n\nBefore.\n\n{code}\n\nAfter.\n", "runbooks/t.md", max_chars=300)
    assert any(c.text == code for c in chunks)


def test_unclosed_fence_runs_to_the_end_of_the_file() -> None:
    chunks = chunk_markdown("# T\n\n## A\n\n```\n## not a heading\n", "runbooks/t.md")
    assert [c.section for c in chunks] == ["A"]


def test_invalid_front_matter_is_a_clear_error() -> None:
    with pytest.raises(ChunkingError, match="front matter is not valid YAML"):
        chunk_markdown("---\ntitle: [unclosed\n---\n# T\n", "runbooks/bad.md")


def test_non_utf8_file_is_refused_with_a_reason() -> None:
    with pytest.raises(ChunkingError, match=r"not UTF-8 text \(invalid byte at offset 5\)"):
        chunk_file("runbooks/latin1.md", "# Caf\xe9s\n\n\xe9t\xe9".encode("latin-1"))


def test_readme_marked_not_a_runbook_is_refused() -> None:
    with pytest.raises(ChunkingError, match="not-a-runbook"):
        chunk_file("runbooks/README.md", b"<!-- not-a-runbook -->\n# How to write runbooks\n")


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("Two-node cluster lost quorum", "two-node-cluster-lost-quorum"),
        ("Extended outage: controlled shutdown", "extended-outage-controlled-shutdown"),
        ("Media errors (HDD/SSD)", "media-errors-hddssd"),
        ("`zpool status` says DEGRADED", "zpool-status-says-degraded"),
        ("Über große Platten", "über-große-platten"),
        ("node_exporter down", "node_exporter-down"),
    ],
)
def test_anchor_matches_github(heading: str, slug: str) -> None:
    assert github_slug(heading) == slug


PLAYBOOK = """\
# site playbook
- name: Patch Proxmox nodes
  hosts: pve
  serial: 1
  tasks:
    - name: apt dist-upgrade
      ansible.builtin.apt:
        upgrade: dist

- hosts: dns
  tasks:
    - name: Restart unbound
      ansible.builtin.service: {name: unbound, state: restarted}
"""

TASKS = """\
- name: Install node_exporter
  ansible.builtin.apt:
    name: prometheus-node-exporter

- block:
    - ansible.builtin.command: zpool scrub tank
  rescue:
    - ansible.builtin.debug: {msg: scrub failed}
  tags: [zfs]

- ansible.builtin.systemd:
    name: pve-cluster
    state: restarted
"""


def test_playbook_gives_one_chunk_per_play_with_its_own_yaml() -> None:
    chunks = chunk_ansible(PLAYBOOK, "ansible/site.yml")
    assert [c.section for c in chunks] == ["Patch Proxmox nodes", "play on dns"]
    assert chunks[0].kind == "ansible-play"
    assert chunks[0].text.startswith("- name: Patch Proxmox nodes") and "dist-upgrade" in chunks[0].text
    assert "Restart unbound" not in chunks[0].text
    assert chunks[1].text.startswith("- hosts: dns") and chunks[1].text.rstrip().endswith("state: restarted}")


def test_task_file_gives_one_chunk_per_task_and_a_block_stays_whole() -> None:
    chunks = chunk_ansible(TASKS, "roles/node/tasks/main.yml")
    assert [c.section for c in chunks] == ["Install node_exporter", "block", "ansible.builtin.systemd"]
    assert "rescue:" in chunks[1].text and chunks[1].tags == ["zfs"]
    assert chunks[0].anchor == "install-node_exporter"


@pytest.mark.parametrize(
    "text",
    ["services:\n  web:\n    image: nginx\n", "- 1\n- 2\n", "[unclosed\n", "- name: only keywords\n  when: true\n"],
)
def test_yaml_that_is_not_ansible_is_refused(text: str) -> None:
    with pytest.raises(ChunkingError, match="not"):
        chunk_ansible(text, "other/compose.yml")
