"""Markdown runbooks into heading-aware chunks.

A chunk is one section (the text under a heading, down to the next heading of any level), with the runbook title,
the section heading, the heading path and a GitHub-style anchor, so a result can link straight to the section.
Code fences are never cut. A section longer than ``max_chars`` is split at paragraph boundaries; every piece keeps
the section's heading and anchor. Front matter (``title``, ``alerts``, ``labels``, ``severity``, ``tags``) becomes
metadata of every chunk of the file.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import yaml

CHUNKER_VERSION = "5"
DEFAULT_MAX_CHARS = 400
NOT_A_RUNBOOK_MARKER = "<!-- not-a-runbook -->"

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_FENCE = re.compile(r"^[ ]{0,3}(`{3,}|~{3,})")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.DOTALL)


class ChunkingError(ValueError):
    """A file cannot be indexed; the message says why (it is shown to the user and the file is skipped)."""


@dataclass
class Chunk:
    """One retrievable piece of a document.

    ``text`` is what a reader sees (the section body); ``search_text`` is what gets embedded and BM25-indexed:
    the same body prefixed with the title, the heading path and the alert names, so a short section still carries
    the context that makes it findable.
    """

    source: str
    ordinal: int
    title: str
    section: str
    anchor: str
    section_path: list[str]
    text: str
    kind: str = "markdown"
    alerts: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    severity: str = ""
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def search_text(self) -> str:
        lines = [self.heading_text]
        if self.alerts:
            lines.append("Alerts: " + ", ".join(self.alerts))
        if self.tags:
            lines.append("Tags: " + ", ".join(self.tags))
        return "\n".join(lines) + "\n\n" + self.text

    @property
    def heading_text(self) -> str:
        """Title and heading path, the context a section's body lacks when read alone."""
        return " > ".join([self.title, *[p for p in self.section_path if p != self.title]])

    def metadata(self) -> dict[str, str | int]:
        """Flat metadata for the vector store (scalar values only)."""
        return {
            "source": self.source,
            "ordinal": self.ordinal,
            "title": self.title,
            "section": self.section,
            "anchor": self.anchor,
            "section_path": " > ".join(self.section_path),
            "kind": self.kind,
            "alerts": "\n".join(self.alerts),
            "tags": "\n".join(self.tags),
            "severity": self.severity,
        }


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = unicodedata.normalize("NFKC", heading).strip().lower()
    text = re.sub(r"`|\*\*|__|\[([^\]]*)\]\([^)]*\)", r"\1", text)
    kept = "".join(ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in ("L", "N", "M"))
    return kept.replace(" ", "-")


class SlugCounter:
    """GitHub de-duplicates repeated anchors in one document with -1, -2 … suffixes."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def anchor(self, heading: str) -> str:
        base = github_slug(heading)
        count = self._seen.get(base, 0)
        self._seen[base] = count + 1
        return base if count == 0 else f"{base}-{count}"


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if str(v).strip()]
    return [str(value)]


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """Separate a YAML front matter block from the body. Invalid YAML is an error, not silently ignored."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    try:
        data = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 2})" if mark is not None else ""
        raise ChunkingError(f"front matter is not valid YAML{where}") from exc
    if not isinstance(data, dict):
        raise ChunkingError("front matter must be a mapping of keys to values")
    return data, text[match.end() :]


@dataclass
class _Section:
    level: int
    heading: str
    anchor: str
    path: list[str]
    blocks: list[str] = field(default_factory=list)


def _blocks(lines: list[str]) -> list[tuple[str, str]]:
    """Group body lines into ('heading'|'para'|'code', text) blocks; fences swallow everything until they close."""
    out: list[tuple[str, str]] = []
    para: list[str] = []
    i = 0

    def flush() -> None:
        if para and any(p.strip() for p in para):
            out.append(("para", "\n".join(para).strip("\n")))
        para.clear()

    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence:
            flush()
            marker = fence.group(1)
            code = [line]
            i += 1
            while i < len(lines):
                code.append(lines[i])
                if lines[i].strip().startswith(marker[0] * len(marker)) and lines[i].strip().strip(marker[0]) == "":
                    break
                i += 1
            out.append(("code", "\n".join(code)))
            i += 1
            continue
        if _HEADING.match(line):
            flush()
            out.append(("heading", line))
        elif not line.strip():
            flush()
        else:
            para.append(line)
        i += 1
    flush()
    return out


def _pack(blocks: list[str], max_chars: int) -> list[str]:
    """Join blocks into pieces of at most ``max_chars``; a single oversized block stays whole."""
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for block in blocks:
        if current and size + len(block) + 2 > max_chars:
            pieces.append("\n\n".join(current))
            current, size = [], 0
        current.append(block)
        size += len(block) + 2
    if current:
        pieces.append("\n\n".join(current))
    return pieces


def chunk_markdown(text: str, source: str, max_chars: int = DEFAULT_MAX_CHARS) -> list[Chunk]:
    """Split one Markdown document into section chunks with title/section/anchor metadata."""
    meta, body = split_front_matter(text.replace("\r\n", "\n"))
    blocks = _blocks(body.split("\n"))
    first_h1 = next((b for kind, b in blocks if kind == "heading" and b.startswith("# ")), None)
    stem = source.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    title = str(meta.get("title") or (_HEADING.match(first_h1).group(2) if first_h1 else "") or stem)  # type: ignore[union-attr]
    slugs = SlugCounter()
    sections: list[_Section] = [_Section(0, title, "", [title])]
    stack: list[tuple[int, str]] = []
    for kind, block in blocks:
        if kind != "heading":
            sections[-1].blocks.append(block)
            continue
        match = _HEADING.match(block)
        assert match is not None
        level, heading = len(match.group(1)), match.group(2).strip()
        stack = [(lvl, h) for lvl, h in stack if lvl < level] + [(level, heading)]
        path = [title, *[h for _, h in stack if h != title]]
        sections.append(_Section(level, heading, slugs.anchor(heading), path))

    labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
    common: dict[str, Any] = {
        "alerts": _as_list(meta.get("alerts")),
        "tags": _as_list(meta.get("tags")),
        "severity": str(meta.get("severity") or ""),
        "labels": {str(k): str(v) for k, v in (labels or {}).items()},
    }
    chunks: list[Chunk] = []
    for section in sections:
        if not section.blocks:
            continue
        for piece in _pack(section.blocks, max_chars):
            chunks.append(
                Chunk(
                    source=source,
                    ordinal=len(chunks),
                    title=title,
                    section=section.heading,
                    anchor=section.anchor,
                    section_path=section.path,
                    text=piece,
                    **common,
                )
            )
    return chunks


def is_not_a_runbook(text: str) -> bool:
    """Files that open with the not-a-runbook marker (the folder README) are documentation about runbooks."""
    return text.lstrip("\ufeff \t\r\n").startswith(NOT_A_RUNBOOK_MARKER)
