"""Ansible playbooks and role task files into chunks: one per play, one per task (a ``block:`` stays one task).

The chunk text is the item's own YAML exactly as written (sliced from the file by the parser's line marks), so
comments and formatting survive and a reader can copy it back. Other YAML (compose files, variables) is not
Ansible and is refused with a reason.
"""

from __future__ import annotations

from typing import Any

import yaml

from tools.runbooks.chunking import Chunk, ChunkingError, SlugCounter

# Keys that only a play has; a list of mappings carrying one of them is a playbook.
_PLAY_KEYS = {"hosts", "import_playbook", "ansible.builtin.import_playbook"}
# Keys that are not the module of a task.
_TASK_KEYWORDS = {
    "name", "when", "tags", "become", "become_user", "register", "notify", "loop", "with_items", "vars",
    "ignore_errors", "changed_when", "failed_when", "delegate_to", "run_once", "environment", "no_log", "until",
    "retries", "delay", "loop_control", "args", "block", "rescue", "always", "listen", "check_mode", "diff",
}  # fmt: skip


def _slice(lines: list[str], node: yaml.Node) -> str:
    start, end = node.start_mark.line, node.end_mark.line
    # A node ends at the first character after it; when that is column 0 the last line belongs to the next node.
    if node.end_mark.column == 0:
        end -= 1
    return "\n".join(lines[start : end + 1]).rstrip()


def _task_label(task: dict[str, Any]) -> str:
    name = task.get("name")
    if name:
        return str(name)
    if "block" in task:
        return "block"
    module = next((k for k in task if k not in _TASK_KEYWORDS), "task")
    return str(module)


def chunk_ansible(text: str, source: str) -> list[Chunk]:
    """Chunk a playbook (list of plays) or a task list (role ``tasks/``/``handlers/`` file)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ChunkingError("not valid YAML") from exc
    if node is None or not isinstance(node, yaml.SequenceNode) or not isinstance(data, list) or not data:
        raise ChunkingError("not an Ansible playbook or task list (expected a YAML list of plays or tasks)")
    if not all(isinstance(item, dict) for item in data):
        raise ChunkingError("not an Ansible playbook or task list (list items must be mappings)")
    is_playbook = any(_PLAY_KEYS & set(item) for item in data)
    if not is_playbook and not all(set(item) - _TASK_KEYWORDS or "block" in item for item in data):
        raise ChunkingError("not an Ansible playbook or task list (items carry no module)")
    lines = text.replace("\r\n", "\n").split("\n")
    file_title = source.rsplit("/", 1)[-1]
    kind = "ansible-play" if is_playbook else "ansible-task"
    slugs = SlugCounter()
    chunks: list[Chunk] = []
    for item, item_node in zip(data, node.value, strict=True):
        if is_playbook:
            label = str(item.get("name") or item.get("import_playbook") or f"play on {item.get('hosts', '?')}")
        else:
            label = _task_label(item)
        chunks.append(
            Chunk(
                source=source,
                ordinal=len(chunks),
                title=file_title,
                section=label,
                anchor=slugs.anchor(label),
                section_path=[file_title, label],
                text=_slice(lines, item_node),
                kind=kind,
                tags=[str(t) for t in item.get("tags", [])] if isinstance(item.get("tags"), list) else [],
            )
        )
    return chunks
