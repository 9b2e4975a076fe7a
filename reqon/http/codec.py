"""Pure request and response encoding rules of §6.3.1–§6.3.4, free of any I/O.

Kept apart from the request pipeline (`reqon.http.client`) so that every rule about
what goes on the wire — URL joining, query merging, header precedence, body encoding,
response decoding, `Retry-After` — can be read and tested as plain functions.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import quote, unquote_plus

from reqon.errors import RunError
from reqon.values import Value, a_type, to_json_text, to_string

__all__ = [
    "FORM_TYPE",
    "HeaderList",
    "body_excerpt",
    "build_url",
    "decode_body",
    "encode_body",
    "encode_form",
    "header_value",
    "join_url",
    "media_type",
    "merge_headers",
    "parse_http_instant",
    "parse_retry_after",
]

FORM_TYPE = "application/x-www-form-urlencoded"
JSON_TYPE = "application/json"
EXCERPT_CHARS = 200
_NO_BODY_STATUSES = frozenset({204, 205, 304})

# A header list as sent: (name as written, value), at most one entry per lower-case name.
HeaderList = list[tuple[str, str]]


# --- §6.3.1 URL and query ---------------------------------------------------------------


def join_url(base: str, path: str) -> str:
    """Base with trailing `/` removed, then the path; an absolute path URL wins."""
    if path.startswith(("http://", "https://")):
        return path
    if path and not path.startswith("/"):
        path = "/" + path
    return base.rstrip("/") + path


_quoted_names: dict[str, str] = {}


def _quote_name(name: str) -> str:
    """Parameter names repeat on every request; their encoding is cached."""
    quoted = _quoted_names.get(name)
    if quoted is None:
        if len(_quoted_names) > 4096:
            _quoted_names.clear()
        quoted = _quoted_names[name] = quote(name, safe="")
    return quoted


def _encode_scalar(name: str, value: Value, what: str) -> str:
    if isinstance(value, (list, dict)):
        raise RunError.runtime(f"{what} '{name}' contains {a_type(value)}; only scalars fit")
    if isinstance(value, str):
        return quote(value, safe="")
    return quote(to_string(value), safe="")


def _encode_values(name: str, value: Value, what: str) -> list[str]:
    """The encoded values one entry contributes: none for null, one per list element."""
    if value is None:
        return []
    if isinstance(value, dict):
        raise RunError.runtime(f"{what} '{name}' is an object; use a string, number or list")
    if isinstance(value, list):
        return [_encode_scalar(name, v, what) for v in value if v is not None]
    return [_encode_scalar(name, value, what)]


def _merge_pairs(
    merged: dict[str, tuple[str, list[str]]],
    entries: Iterable[tuple[str, Value]],
    what: str,
) -> None:
    """Later entries replace earlier ones of the same name at the first one's position."""
    for name, value in entries:
        merged[name] = (_quote_name(name), _encode_values(name, value, what))


def _path_query_pairs(query: str) -> dict[str, tuple[str, list[str]]]:
    """A query string already in the path, kept exactly as written (already encoded)."""
    merged: dict[str, tuple[str, list[str]]] = {}
    for pair in query.split("&"):
        if not pair:
            continue
        raw_name, equals, raw_value = pair.partition("=")
        name = unquote_plus(raw_name)
        value = raw_value if equals else ""
        if name in merged:
            merged[name][1].append(value)
        else:
            merged[name] = (raw_name, [value])
    return merged


def build_url(
    base: str,
    path: str,
    params: Sequence[tuple[str, Value]] = (),
    extra_params: Sequence[tuple[str, Value]] = (),
    auth_params: Sequence[tuple[str, str]] = (),
) -> str:
    """The full request URL of §6.3.1.

    Order: the path's own query, `params`, `extra_params` (`since`, pagination), then the
    api-key parameter. A repeated name keeps the position of its first occurrence and the
    value of its last; a null last value leaves the parameter out (a way to unset one).
    """
    url = join_url(base, path)
    if not params and not extra_params and not auth_params:
        return url
    head, _, fragment = url.partition("#")
    stem, _, own_query = head.partition("?")
    merged = _path_query_pairs(own_query) if own_query else {}
    _merge_pairs(merged, params, "query parameter")
    _merge_pairs(merged, extra_params, "query parameter")
    _merge_pairs(merged, auth_params, "query parameter")
    query = "&".join(f"{name}={v}" for name, values in merged.values() for v in values)
    url = f"{stem}?{query}" if query else stem
    return f"{url}#{fragment}" if fragment else url


def encode_form(body: Value) -> bytes:
    """A form body (§6.3.3): an object, encoded like query parameters."""
    if not isinstance(body, dict):
        raise RunError.runtime(f"a form-encoded body must be an object, not {a_type(body)}")
    merged: dict[str, tuple[str, list[str]]] = {}
    _merge_pairs(merged, body.items(), "form field")
    return "&".join(f"{n}={v}" for n, values in merged.values() for v in values).encode()


# --- §6.3.2 headers ---------------------------------------------------------------------


def header_value(name: str, value: Value) -> str:
    """A header value as text (§5.12); line breaks would split the header, so they fail."""
    text = value if isinstance(value, str) else to_string(value)
    if "\r" in text or "\n" in text:
        raise RunError.runtime(f"header '{name}' contains a line break")
    return text


def merge_headers(
    layers: Iterable[Mapping[str, Value] | None],
) -> dict[str, tuple[str, str | None]]:
    """Header layers from lowest to highest precedence, keyed by lower-case name.

    A later layer replaces an earlier value whatever the spelling; a null value is kept
    as `None` so that it still overrides (and so removes) a lower layer's header.
    """
    merged: dict[str, tuple[str, str | None]] = {}
    for layer in layers:
        if not layer:
            continue
        for name, value in layer.items():
            merged[name.lower()] = (name, None if value is None else header_value(name, value))
    return merged


def media_type(content_type: str | None) -> str:
    """`"Application/JSON; charset=utf-8"` → `"application/json"`; missing → `""`."""
    if not content_type:
        return ""
    return content_type.partition(";")[0].strip().lower()


def _charset(content_type: str | None, default: str = "utf-8") -> str:
    for part in (content_type or "").split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    return default


# --- §6.3.3 request body ----------------------------------------------------------------


def encode_body(body: Value, content_type: str | None) -> tuple[bytes, str | None]:
    """The bytes of a non-null body and the Content-Type to add (None: keep the given one).

    Form encoding and raw text are chosen by the effective Content-Type; everything else
    is JSON, which also supplies `application/json` when no type was given.
    """
    kind = media_type(content_type)
    if kind == FORM_TYPE:
        return encode_form(body), None
    if kind.startswith("text/") and isinstance(body, str):
        return body.encode(_charset(content_type), errors="replace"), None
    return to_json_text(body).encode(), None if content_type else JSON_TYPE


# --- §6.3.4 response decoding -----------------------------------------------------------


def _reject_constant(name: str) -> Value:
    raise ValueError(f"{name} is not JSON")


def _json_error_message(exc: ValueError, data: bytes) -> str:
    if isinstance(exc, json.JSONDecodeError):
        where = f"line {exc.lineno} column {exc.colno} (char {exc.pos})"
        return f"malformed JSON at {where}: {exc.msg}; body: {body_excerpt(data)}"
    return f"malformed JSON: {exc}; body: {body_excerpt(data)}"


def decode_body(status: int, content_type: str | None, data: bytes) -> Value:
    """The decoded body of a successful response, or `RunError('decode', ...)`.

    The message lacks the request line; the caller prefixes it.
    """
    if not data or status in _NO_BODY_STATUSES:
        return None
    kind = media_type(content_type)
    if not kind or kind == JSON_TYPE or kind.endswith("+json"):
        try:
            return json.loads(data, parse_constant=_reject_constant)  # type: ignore[no-any-return]
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
            raise RunError("decode", _json_error_message(exc, data)) from None
        except RecursionError:
            raise RunError("decode", "malformed JSON: nested too deeply to decode") from None
    if kind.startswith("text/"):
        try:
            return data.decode(_charset(content_type), errors="replace")
        except LookupError:  # an unknown charset name
            return data.decode("utf-8", errors="replace")
    raise RunError("decode", f"unsupported content type {kind}")


def body_excerpt(data: bytes, limit: int = EXCERPT_CHARS) -> str:
    """At most `limit` characters of a body for a message, on one line."""
    text = data[: limit * 4].decode("utf-8", errors="replace")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


# --- dates and Retry-After --------------------------------------------------------------


def parse_http_instant(text: str) -> float | None:
    """An HTTP date (RFC 9110) or an ISO-8601 instant as epoch seconds; None if neither."""
    text = text.strip()
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        parsed = None
    if parsed is None:
        try:
            parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.timestamp()


def parse_retry_after(text: str, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` value: delta-seconds or an HTTP date.

    Past dates give 0; unreadable values give None (the header is then ignored).
    """
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        instant = parse_http_instant(text)
        if instant is None:
            return None
        seconds = instant - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)
