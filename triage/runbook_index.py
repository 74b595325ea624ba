"""The runbook index the settings describe: its embedding model and its Chroma (a server or a local folder).

The API, the worker, the CLI and ``/ask`` build their index here, so the choice of embedder and store is made once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from triage.settings import KnowledgeSettings, StartupError

LOCAL_MODEL = "all-MiniLM-L6-v2"

if TYPE_CHECKING:
    from tools.runbooks.embeddings import OnnxMiniLmEmbedding, OpenAICompatibleEmbedding
    from tools.runbooks.index import RunbookIndex


def make_embedder_from_settings(knowledge: KnowledgeSettings) -> OnnxMiniLmEmbedding | OpenAICompatibleEmbedding:
    """The embedding function the settings select; refuses a local model name we do not ship."""
    from tools.runbooks.embeddings import make_embedder

    if not knowledge.embeddings_base_url and knowledge.embeddings_model != LOCAL_MODEL:
        raise StartupError(
            f"EMBEDDINGS_MODEL={knowledge.embeddings_model!r} needs EMBEDDINGS_BASE_URL; the only local model "
            f"is {LOCAL_MODEL!r} (unset EMBEDDINGS_MODEL to use it)"
        )
    key = knowledge.embeddings_api_key.get_secret_value() if knowledge.embeddings_api_key else None
    return make_embedder(knowledge.embeddings_base_url, knowledge.embeddings_model, key)


def index_from_settings(knowledge: KnowledgeSettings) -> RunbookIndex:
    """A ``RunbookIndex`` on the configured Chroma (``CHROMA_URL`` or ``CHROMA_DIR``) and embedding model."""
    from tools.runbooks.index import RunbookIndex

    embedder = make_embedder_from_settings(knowledge)
    return RunbookIndex(
        embedder,
        chroma_dir=None if knowledge.chroma_url else knowledge.chroma_dir,
        chroma_url=knowledge.chroma_url,
    )
