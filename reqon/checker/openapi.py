"""The checker's view of OpenAPI sources (§3.1.6, §4.2): the index of a local document.

Only local documents are read (no network in `reqon check`); a URL document is fetched
by the engine when the mission starts. Loading goes through `reqon.openapi.cache`, so
the second check of a mission whose document is large reads a small index only; PyYAML,
jsonschema-path and the validators are imported only by missions that name a document.
"""
from __future__ import annotations

from pathlib import Path

from reqon.openapi.document import Document, DocumentError, is_url

__all__ = ["Document", "DocumentError", "is_url", "load_local"]


def load_local(directory: Path, document: str) -> Document:
    """The document `document` (as written after `from`) relative to `directory`; raises DocumentError."""
    from reqon.openapi.cache import load_file

    return load_file(directory / document, document)
