"""`reqon mock SPEC`: every operation of a document served on 127.0.0.1 (§3.1.6 tooling).

Each request is matched to its operation, checked against the document (parameters and
body; a mismatch is a 400 whose body says why), and answered with the first documented
2xx response: its example, else data generated from its schema. The generated data
depend only on `--seed`, the operation and the request's path, so a mission run twice
against the mock stores the same records. It lets a mission be written and tested
before there are credentials, and it is what the tests run missions against.
"""
from __future__ import annotations

import asyncio
import hashlib
import random
import signal
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from reqon.openapi.cache import load_file
from reqon.openapi.document import Document, DocumentError, Operation
from reqon.openapi.samples import example_or_generated
from reqon.openapi.validation import DocumentSchemas

OPERATION_KEY = web.AppKey("operation", dict)


def make_app(document: Document, seed: int = 0, log: Any = None) -> web.Application:
    """An aiohttp app answering every operation of `document` under its base path."""
    schemas = DocumentSchemas(document)
    prefix = urlsplit(document.base_url or "").path.rstrip("/")
    app = web.Application()
    for operation in document.operations.values():
        handler = _handler(document, schemas, operation, seed, log)
        try:
            app.router.add_route(operation.method, prefix + operation.path, handler)
        except ValueError as exc:  # a path template aiohttp cannot route: said, not fatal
            print(f"reqon mock: not serving {operation.method} {operation.path}: {exc}", file=sys.stderr)
    return app


def _handler(document: Document, schemas: DocumentSchemas, operation: Operation, seed: int, log: Any) -> Any:
    async def handle(request: web.Request) -> web.StreamResponse:
        status, body = await _answer(document, schemas, operation, seed, request)
        if log is not None:
            print(f"{request.method} {request.path_qs} {status} {operation.operation_id}", file=log, flush=True)
        if body is None:
            return web.Response(status=status)
        return web.json_response(body, status=status)
    return handle


async def _answer(document: Document, schemas: DocumentSchemas, operation: Operation, seed: int,
                  request: web.Request) -> tuple[int, Any]:
    body: Any = None
    if request.can_read_body:
        try:
            body = await request.json()
        except ValueError:
            return 400, {"error": "the request body is not JSON"}
    query: dict[str, Any] = {}
    for name in request.query:
        values = request.query.getall(name)
        query[name] = values[0] if len(values) == 1 else values
    problems = schemas.request(operation).problems(query, dict(request.match_info), dict(request.headers), body,
                                                   from_text=True)
    if problems:
        return 400, {"error": "the request does not match the OpenAPI document", "problems": problems}
    return _response(document, operation, seed, request.path_qs)


def _response(document: Document, operation: Operation, seed: int, path: str) -> tuple[int, Any]:
    from jsonschema_path import SchemaPath

    spec = SchemaPath.from_dict(document.root, base_uri=document.uri,
                                handlers={s: _lookup(document.contents) for s in ("file", "http", "https")})
    responses = spec / "paths" / operation.path / operation.method.lower() / "responses"
    codes = sorted(str(k) for k in responses.keys() if str(k).startswith("2")) or ["default"]
    code = codes[0]
    status = int(code) if code.isdigit() else 200
    if code not in set(responses.keys()):
        return status, None
    response = responses / code
    digest = hashlib.sha256(f"{seed}\0{operation.operation_id}\0{path}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    if document.version == "2.0":
        keys = set(response.keys())
        if "examples" in keys and "application/json" in set((response / "examples").keys()):
            return status, (response / "examples" / "application/json").read_value()
        return status, example_or_generated(response, rng) if "schema" in keys else None
    if "content" not in set(response.keys()):
        return status, None
    content = response / "content"
    media = next((str(m) for m in content.keys() if "json" in str(m)), None)
    if media is None:
        return status, None
    return status, example_or_generated(content / media, rng)


def _lookup(contents: dict[str, Any]) -> Any:
    def lookup(uri: str) -> Any:
        return contents[uri.split("#", 1)[0]]
    return lookup


# ---------------------------------------------------------------- the command


def mock_command(args: Any) -> int:
    path = Path(args.spec)
    if not path.exists():
        print(f"reqon: usage error: no such file: {args.spec}", file=sys.stderr)
        return 2
    try:
        document = load_file(path, args.spec)
    except DocumentError as exc:
        print(f"reqon: configuration error: {exc}", file=sys.stderr)
        return 3
    try:
        return asyncio.run(_serve(document, args.port, args.seed))
    except OSError as exc:
        print(f"reqon: configuration error: cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return 3


async def _serve(document: Document, port: int, seed: int) -> int:
    app = make_app(document, seed, log=sys.stdout)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    bound = runner.addresses[0][1]
    prefix = urlsplit(document.base_url or "").path.rstrip("/")
    print(f"reqon mock: {len(document.operations)} operations of {document.location} on "
          f"http://127.0.0.1:{bound}{prefix} (seed {seed}); Ctrl-C stops", file=sys.stdout, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    return 0
