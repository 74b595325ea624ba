"""The runbook index: Markdown and Ansible chunking, offline embeddings, incremental ingest, hybrid retrieval.

``ingest.ingest_blocking`` fills a Chroma collection from folders of runbooks; ``index.RunbookIndex`` searches it
(vector + BM25, reciprocal rank fusion). Nothing here reads the settings: callers pass folders, URLs and models.
"""
