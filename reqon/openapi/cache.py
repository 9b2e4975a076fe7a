"""Loaded documents, cached by content hash in the user's data directory.

A document's index (version, base URL, operations, security schemes) and its parsed
files are written with marshal, the fastest serialiser of plain JSON-like data that the
standard library has (GitHub's document: 0.03 s to load against 0.2 s for json and 0.06 s
for pickle, measured in bench/README.md). The index and the contents are two files, so
`reqon check`, which needs only the index, never reads the contents. The key is the
SHA-256 of the main file's bytes and its URI; the hashes of the other files a document
refers to are stored in the index and compared on every use, so editing any of them
invalidates the entry. A cache that cannot be written is silently skipped: it only
ever saves time.
"""
from __future__ import annotations

import marshal
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reqon.openapi.document import (
    Document, DocumentError, Indexer, Operation, Parameter, check_shape, content_hash, parse, version_of,
)

FORMAT = 2
_memo: dict[tuple[str, str], Document] = {}  # within one process: run = check + prepare


def cache_dir() -> Path:
    """`$XDG_DATA_HOME/reqon/openapi`, else `~/.local/share/reqon/openapi`."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "reqon" / "openapi"


def load_file(path: Path, location: str | None = None) -> Document:
    """A local document (and the files beside it that it refers to)."""
    location = location or str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(location, f"cannot read it: {exc.strerror or exc}") from None
    return load_bytes(data, location, path.resolve().as_uri(), local=True)


def load_bytes(data: bytes, location: str, uri: str, *, local: bool) -> Document:
    key = content_hash(data + b"\0" + uri.encode())
    memo = _memo.get((uri, key))
    if memo is not None and _others_unchanged(memo.others):
        return memo
    document = _from_cache(key, location, uri, lambda: _reparse(data, location, uri, local))
    if document is None:
        root = parse(data, location)
        version = version_of(root, location)
        check_shape(root, version, location)
        indexer = Indexer(location, uri, root, version, {uri: root}, _read_local if local else None)
        document = indexer.document()
        _store(key, document)
    _memo[(uri, key)] = document
    return document


def _read_local(uri: str) -> bytes:
    from urllib.parse import unquote, urlsplit
    parts = urlsplit(uri)
    if parts.scheme != "file":
        raise OSError(f"not a local file (documents beside a local document only): {uri}")
    return Path(unquote(parts.path)).read_bytes()


def _others_unchanged(hashes: dict[str, str]) -> bool:
    for uri, expected in hashes.items():
        try:
            if content_hash(_read_local(uri)) != expected:
                return False
        except OSError:
            return False
    return True


def _from_cache(key: str, location: str, uri: str, reparse: Callable[[], dict[str, Any]]) -> Document | None:
    index_path = cache_dir() / f"{key}.index"
    try:
        index = marshal.loads(index_path.read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if not isinstance(index, dict) or index.get("format") != FORMAT or not _others_unchanged(index["others"]):
        return None
    operations = {
        op[0]: Operation(op[0], op[1], op[2], op[3], tuple(Parameter(*p) for p in op[4]),
                         None if op[5] is None else tuple(tuple(r) for r in op[5]))
        for op in index["operations"]}
    contents_path = cache_dir() / f"{key}.contents"

    def contents() -> dict[str, Any]:
        try:
            return marshal.loads(contents_path.read_bytes())
        except (OSError, EOFError, ValueError, TypeError):
            return reparse()
    return Document(location, uri, index["version"], index["base_url"], operations, index["schemes"],
                    others=index["others"], _load_contents=contents)


def _reparse(data: bytes, location: str, uri: str, local: bool) -> dict[str, Any]:
    """The cache lost its contents file: parse the files again."""
    root = parse(data, location)
    indexer = Indexer(location, uri, root, version_of(root, location), {uri: root}, _read_local if local else None)
    indexer.document()
    return indexer.contents


def _store(key: str, document: Document) -> None:
    index = {
        "format": FORMAT, "version": document.version, "base_url": document.base_url, "schemes": document.schemes,
        "others": document.others,
        "operations": [(op.operation_id, op.method, op.path, op.pointer,
                        [(p.name, p.location, p.required) for p in op.parameters],
                        None if op.security is None else [list(r) for r in op.security])
                       for op in document.operations.values()],
    }
    try:
        directory = cache_dir()
        directory.mkdir(parents=True, exist_ok=True)
        _write(directory / f"{key}.contents", marshal.dumps(document.contents))
        _write(directory / f"{key}.index", marshal.dumps(index))  # last: an index implies its contents
    except (OSError, ValueError):
        pass


def _write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
