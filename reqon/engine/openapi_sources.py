"""OpenAPI sources at mission start (§3.1.6): each `from` document loaded, its base URL
taken when the source gives none, and every `call` of the mission resolved to an
operation before the first stage, so that a bad document or an unknown operation of a
URL document is a configuration error (exit 3) and never a failure half-way.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reqon import ast
from reqon.errors import ConfigError
from reqon.http.secrets import Secrets
from reqon.openapi.document import Document, DocumentError, is_url, resolve_base

DOCUMENT_TIMEOUT_MS = 30000
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024


@dataclass
class OpenApiSource:
    """What the fetch planner needs about one OpenAPI source."""

    document: Document
    validate_responses: bool = False
    validate_requests: bool = False


def load_local(source: ast.Source) -> Document:
    """The local document of `source`; raises ConfigError naming the source and document."""
    from reqon.openapi.cache import load_file
    assert source.document is not None
    try:
        return load_file(Path(source.span.file).parent / source.document, source.document)
    except DocumentError as exc:
        raise ConfigError(f"source {source.name.name} ({_where(source)}): {exc}") from None


async def load(source: ast.Source, timeout_ms: float, *, proxy: bool = True,
               secrets: Secrets | None = None) -> Document:
    """Local or URL; a URL document is fetched through the HTTP client (its timeouts, redirects
    and proxy settings)."""
    assert source.document is not None
    if not is_url(source.document):
        return load_local(source)
    from reqon.http.client import fetch_document
    from reqon.openapi.cache import load_bytes
    try:
        data = await fetch_document(source.document, timeout_ms, MAX_DOCUMENT_BYTES, proxy=proxy, secrets=secrets)
        return load_bytes(data, source.document, source.document, local=False)
    except ConfigError as exc:
        raise ConfigError(f"source {source.name.name} ({_where(source)}): cannot fetch the OpenAPI document: "
                          f"{exc}") from None
    except DocumentError as exc:
        raise ConfigError(f"source {source.name.name} ({_where(source)}): {exc}") from None


def base_of(source: ast.Source, document: Document) -> str:
    base = resolve_base(document)
    if base is None:
        raise ConfigError(f"source {source.name.name} ({_where(source)}): the OpenAPI document {source.document} "
                          "names no server; give base: \"https://…\"")
    return base


def check_calls(mission: ast.Mission, documents: dict[str, Document]) -> None:
    """Every `call` names an operation its document defines (the checker did this for local
    documents; URL documents are known only now)."""
    for step in _calls(mission):
        document = documents.get(step.source.name)
        if document is not None and document.operation(step.operation.name) is None:
            span = step.operation.span
            raise ConfigError(f"{span.file}:{span.line}:{span.column}: unknown operation "
                              f"'{step.operation.name}' in {document.location}")


def _calls(mission: ast.Mission) -> Iterator[ast.CallStep]:
    for action in mission.actions:
        yield from _calls_in(action.steps)


def _calls_in(steps: tuple[Any, ...]) -> Iterator[ast.CallStep]:
    for step in steps:
        if isinstance(step, ast.CallStep):
            yield step
        elif isinstance(step, ast.For):
            yield from _calls_in(step.body)
        elif isinstance(step, ast.MatchStep):
            for arm in step.arms:
                yield from _calls_in(arm.body)


def _where(source: ast.Source) -> str:
    return f"{source.span.file}:{source.span.line}:{source.span.column}"
