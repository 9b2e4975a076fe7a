"""`postgrest` stores (LANGUAGE.md §3.2, §6.6.6): a table behind a PostgREST (e.g. Supabase) endpoint.

The endpoint comes from `REQON_POSTGREST_URL`, `REQON_POSTGREST_KEY` and, optionally,
`REQON_POSTGREST_SCHEMA`. A record's fields are the row's columns and its key goes into the
`id` column. The exact requests are listed in docs/postgrest.md:

* a store step is one `POST /<table>?on_conflict=id` with every record of the step as a JSON
  array and `Prefer: resolution=merge-duplicates` (PostgREST runs it as one transaction); an
  `upsert` step first reads the affected rows (`GET /<table>?id=in.(…)`) and posts the
  merged records (§6.6.6);
* the row is the record: `id` holds the key and is part of the record read back;
* reads are `GET /<table>?select=*&order=id.asc` paged with `limit`/`offset`, one row with
  `id=eq.<key>`, and the count from `Prefer: count=exact` (`Content-Range: 0-0/N`).

Every request sends the key as `apikey` and as a bearer token (what Supabase asks for) and
is retried like any HTTP call of a mission (§6.3.5): connection errors, timeouts and 408,
429, 500, 502, 503 and 504 are retried with backoff, honouring `Retry-After`; other
statuses fail the step with kind `http` (`auth` for 401/403). The key is never part of a
URL, and it is replaced by `***` in every message (an error body that echoes it included).

Reads are synchronous like every store's (see `Store`), on their own blocking client.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx

from reqon.errors import ConfigError, ErrorKind, RunError
from reqon.stores.base import Items, JsonObject, Snapshot, merge_record, prepare_records, store_error

PAGE_SIZE = 1000
MAX_ATTEMPTS = 3
RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})
_BACKOFF_S = 0.2
_MAX_RETRY_AFTER_S = 30.0
_TIMEOUT_S = 30.0
_ID = "id"
Rows = list[JsonObject]  # spelled once here: inside the class, `list` is the store's method


@dataclass(frozen=True)
class PostgrestEndpoint:
    url: str
    key: str
    schema: str | None = None

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> PostgrestEndpoint:
        url, key = env.get("REQON_POSTGREST_URL", ""), env.get("REQON_POSTGREST_KEY", "")
        missing = [name for name, value in (("REQON_POSTGREST_URL", url), ("REQON_POSTGREST_KEY", key))
                   if not value]
        if missing:
            raise ConfigError(f"postgrest stores need {' and '.join(missing)} in the environment (§3.2)")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"REQON_POSTGREST_URL must be an absolute http(s) URL, got {url!r}")
        return cls(url.rstrip("/"), key, env.get("REQON_POSTGREST_SCHEMA") or None)

    def headers(self, *, writing: bool = False) -> dict[str, str]:
        headers = {"apikey": self.key, "Authorization": f"Bearer {self.key}", "Accept": "application/json"}
        if self.schema:
            headers["Content-Profile" if writing else "Accept-Profile"] = self.schema
        return headers

    def redact(self, text: str) -> str:
        return text.replace(self.key, "***") if len(self.key) >= 4 else text


class PostgrestStore:
    """A `postgrest` store declaration: one table of the endpoint, rows keyed by `id`."""

    kind = "postgrest"

    def __init__(self, name: str, target: str, endpoint: PostgrestEndpoint) -> None:
        self.name = name
        self.target = target
        self.endpoint = endpoint
        self._path = f"{endpoint.url}/{quote(target, safe='')}"
        self._reader: httpx.Client | None = httpx.Client(timeout=_TIMEOUT_S)
        self._writer: httpx.AsyncClient | None = None

    # ------------------------------------------------------------ writing

    async def write(self, records: Iterable[tuple[str, Any]], *, upsert: bool, partial: bool | None) -> None:
        prepared = prepare_records(self.name, records)
        merged: dict[str, JsonObject] = {}
        existing = self._rows_by_id([key for key, _ in prepared]) if upsert and prepared else {}
        for key, value in prepared:  # several writes of one key in a step apply in order
            before = merged.get(key, existing.get(key))
            merged[key] = {**merge_record(before, value, upsert=upsert, partial=partial), _ID: key}
        if not merged:
            return
        body = json.dumps(list(merged.values()), allow_nan=False).encode("ascii")
        headers = {**self.endpoint.headers(writing=True), "Content-Type": "application/json",
                   "Prefer": "resolution=merge-duplicates,return=minimal"}
        url = f"{self._path}?on_conflict={_ID}"
        await self._send_async("POST", url, headers, body)

    def _rows_by_id(self, keys: list[str]) -> dict[str, JsonObject]:
        """The affected rows, read before an upsert writes them back merged (§6.6.6)."""
        rows: dict[str, JsonObject] = {}
        unique = sorted(set(keys))
        for start in range(0, len(unique), 200):  # keep URLs short
            chunk = unique[start:start + 200]
            ids = ",".join(_in_value(key) for key in chunk)
            for row in self._get_json(f"{self._path}?select=*&id=in.({quote(ids, safe=',()')})"):
                rows[str(row.get(_ID))] = row
        return rows

    # ------------------------------------------------------------ reading

    def get(self, key: str) -> JsonObject | None:
        rows = self._get_json(f"{self._path}?select=*&id=eq.{quote(key, safe='')}")
        return rows[0] if rows else None

    def list(self) -> Snapshot:
        """Every row in the server's ascending order of `id` (§6.6.5), page by page."""
        records: Snapshot = []
        offset = 0
        while True:
            rows = self._get_json(f"{self._path}?select=*&order=id.asc&limit={PAGE_SIZE}&offset={offset}")
            records.extend(rows)
            if len(rows) < PAGE_SIZE:
                return records
            offset += PAGE_SIZE

    def items(self) -> Items:
        return [(str(row.get(_ID)), row) for row in self.list()]

    def count(self) -> int:
        response = self._send_sync("GET", f"{self._path}?select=id&limit=1",
                                   {**self.endpoint.headers(), "Prefer": "count=exact"})
        total = response.headers.get("content-range", "").rpartition("/")[2]
        if not total.isdigit():
            raise store_error(f"store {self.name}: GET {self._path}: no row count in Content-Range "
                              f"({response.headers.get('content-range')!r})")
        return int(total)

    def _get_json(self, url: str) -> Rows:
        response = self._send_sync("GET", url, self.endpoint.headers())
        try:
            rows = response.json()
        except ValueError:
            raise store_error(f"store {self.name}: GET {url}: the answer is not JSON") from None
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise store_error(f"store {self.name}: GET {url}: expected a JSON array of rows")
        return rows

    # ------------------------------------------------------------ HTTP with retries

    def _send_sync(self, method: str, url: str, headers: dict[str, str]) -> httpx.Response:
        client = self._open_reader()
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                response = client.request(method, url, headers=headers)
            except httpx.HTTPError as exc:
                if attempt == MAX_ATTEMPTS:
                    raise self._network_error(method, url, exc, attempt) from None
                time.sleep(_backoff(attempt, None))
                continue
            if response.status_code in RETRYABLE and attempt < MAX_ATTEMPTS:
                time.sleep(_backoff(attempt, response))
                continue
            return self._checked(method, url, response, attempt)
        raise AssertionError("unreachable")

    async def _send_async(self, method: str, url: str, headers: dict[str, str], body: bytes) -> httpx.Response:
        if self._reader is None:
            raise store_error(f"store {self.name} is closed")
        if self._writer is None:
            self._writer = httpx.AsyncClient(timeout=_TIMEOUT_S)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                response = await self._writer.request(method, url, headers=headers, content=body)
            except httpx.HTTPError as exc:
                if attempt == MAX_ATTEMPTS:
                    raise self._network_error(method, url, exc, attempt) from None
                await asyncio.sleep(_backoff(attempt, None))
                continue
            if response.status_code in RETRYABLE and attempt < MAX_ATTEMPTS:
                await asyncio.sleep(_backoff(attempt, response))
                continue
            return self._checked(method, url, response, attempt)
        raise AssertionError("unreachable")

    def _checked(self, method: str, url: str, response: httpx.Response, attempts: int) -> httpx.Response:
        if response.status_code < 400:
            return response
        body = self.endpoint.redact(response.text[:200])
        tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
        kind: ErrorKind = "auth" if response.status_code in (401, 403) else "http"
        raise RunError(kind=kind, status=response.status_code, message=self.endpoint.redact(
            f"store {self.name}: {method} {url}: {response.status_code} {response.reason_phrase} "
            f"after {tries}: {body}"))

    def _network_error(self, method: str, url: str, exc: Exception, attempts: int) -> RunError:
        kind: ErrorKind = "timeout" if isinstance(exc, httpx.TimeoutException) else "network"
        return RunError(kind=kind, message=self.endpoint.redact(
            f"store {self.name}: {method} {url}: {type(exc).__name__}: {exc} after {attempts} attempts"))

    def _open_reader(self) -> httpx.Client:
        if self._reader is None:
            raise store_error(f"store {self.name} is closed")
        return self._reader

    # ------------------------------------------------------------ lifecycle

    async def flush(self) -> None:
        """Every step is committed by the server when its request returns."""

    async def close(self) -> None:
        reader, self._reader = self._reader, None
        writer, self._writer = self._writer, None
        if reader is not None:
            reader.close()
        if writer is not None:
            await writer.aclose()


def _backoff(attempt: int, response: httpx.Response | None) -> float:
    """`Retry-After` (seconds or an HTTP date) when the server says so, else exponential backoff."""
    if response is not None:
        value = response.headers.get("retry-after", "").strip()
        if value.isdigit():
            return min(float(value), _MAX_RETRY_AFTER_S)
        if value:
            try:
                return min(max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0), _MAX_RETRY_AFTER_S)
            except (TypeError, ValueError):
                pass
    return float(_BACKOFF_S * 2 ** (attempt - 1))


def _in_value(key: str) -> str:
    """A value of PostgREST's `in.(…)` list, double-quoted so commas and parentheses are data."""
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
