"""Opening the Chroma collection that holds the runbook chunks: embedded on disk, or a Chroma server.

The collection metadata records which embedding model produced its vectors (``embedding_model``) and a
``revision`` that every ingest that changed something increments, so readers in other processes know when to
rebuild their BM25 index. The collection is always opened with our embedding function: Chroma's default one
would try to download a model.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tools.errors import SourceConnectError, SourceError
from tools.runbooks.embeddings import RunbookEmbedder

COLLECTION_NAME = "sre-triage-runbooks"
REBUILD_HINT = "run `sre-triage ingest --rebuild` to re-embed every document with the configured model"


class IndexModelMismatch(SourceError):
    """The index was built with another embedding model; searching it would compare unrelated vectors."""

    def __init__(self, stored: str, configured: str) -> None:
        super().__init__(
            f"the runbook index was built with embedding model {stored!r} but the configured model is "
            f"{configured!r}; {REBUILD_HINT}",
            source="runbooks",
        )
        self.stored = stored
        self.configured = configured


def make_client(chroma_dir: Path | None = None, chroma_url: str | None = None) -> Any:
    """A Chroma client: a server when ``chroma_url`` is set, else an embedded store in ``chroma_dir``."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if chroma_url:
        parts = urlsplit(chroma_url)
        if not parts.hostname:
            raise SourceConnectError("CHROMA_URL has no host name", source="chroma", url=chroma_url)
        ssl = parts.scheme == "https"
        port = parts.port or (443 if ssl else 8000)
        try:
            return chromadb.HttpClient(host=parts.hostname, port=port, ssl=ssl, settings=chroma_settings)
        except Exception as exc:  # chromadb raises plain ValueError/ConnectError subclasses on a failed heartbeat
            raise SourceConnectError(f"cannot reach the Chroma server: {type(exc).__name__}", source="chroma",
                                     url=chroma_url) from exc  # fmt: skip
    if chroma_dir is None:
        raise ValueError("either chroma_dir or chroma_url is required")
    chroma_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(chroma_dir), settings=chroma_settings)


def close_client(client: Any) -> None:
    """Close a Chroma client, including the HTTP connection pool a server client keeps.

    chromadb stops a shared client system when its last user closes, but leaves the HTTP session of a server
    client open; its sockets would linger until garbage collection.
    """
    from chromadb.api.shared_system_client import SharedSystemClient

    identifier = getattr(client, "_identifier", None)
    session = getattr(getattr(client, "_server", None), "_session", None)
    client.close()
    # only when no other client in this process still shares the system (and so the session)
    if session is not None and identifier not in SharedSystemClient._identifier_to_system:
        session.close()


def stored_model(client: Any) -> str | None:
    """The embedding model recorded by the collection, or None when there is no collection yet."""
    from chromadb.errors import NotFoundError

    try:
        # Opened without an embedding function on purpose: only the metadata is read, nothing is embedded.
        collection = client.get_collection(COLLECTION_NAME)
    except NotFoundError:
        return None
    return str((collection.metadata or {}).get("embedding_model", "unknown"))


def open_collection(client: Any, embedder: RunbookEmbedder, *, create: bool, rebuild: bool = False) -> Any | None:
    """Open the runbook collection with ``embedder``; refuse one built with another model.

    ``create`` makes an empty collection when there is none (ingest); without it a missing collection gives None
    (search on a fresh install). ``rebuild`` drops the collection first.
    """
    if rebuild:
        drop_collection(client)
    stored = stored_model(client)
    if stored is not None and stored != embedder.identity:
        raise IndexModelMismatch(stored, embedder.identity)
    if stored is None and not create:
        return None
    metadata = {"embedding_model": embedder.identity, "revision": 0, "created_at": int(time.time())}
    if stored is None:
        return client.get_or_create_collection(
            COLLECTION_NAME,
            embedding_function=embedder,
            metadata=metadata,
            configuration={"hnsw": {"space": "cosine"}},
        )
    return client.get_collection(COLLECTION_NAME, embedding_function=embedder)


def drop_collection(client: Any) -> bool:
    """Delete the runbook collection; False when there was none."""
    from chromadb.errors import NotFoundError

    try:
        client.delete_collection(COLLECTION_NAME)
    except NotFoundError:
        return False
    return True


def revision(collection: Any) -> int:
    """The collection's ingest revision (0 for a fresh one)."""
    return int((collection.metadata or {}).get("revision", 0))


def bump_revision(collection: Any) -> int:
    """Record that the contents changed, so every reader rebuilds its keyword index."""
    meta = dict(collection.metadata or {})
    meta["revision"] = int(meta.get("revision", 0)) + 1
    meta["updated_at"] = int(time.time())
    # Chroma refuses "hnsw:" keys in a metadata update; the space lives in the configuration anyway.
    collection.modify(metadata={k: v for k, v in meta.items() if not str(k).startswith("hnsw:")})
    return int(meta["revision"])
