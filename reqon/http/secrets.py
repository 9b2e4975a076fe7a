"""Keeping credentials out of everything reqon prints or saves (§3.1.1, §8.4 "Secrets").

One `Secrets` object per run collects every credential value as it is resolved and every
token obtained while running. Whatever leaves the process as text — error messages, log
lines, `http.url`, run state — goes through :meth:`Secrets.redact` first, which replaces
each occurrence of a known value with `***`.

Two decisions the spec leaves open:

* **Short values.** A value shorter than :data:`MIN_SECRET_LENGTH` (4) characters is not
  searched for in free text: replacing every `"a"` or `"42"` of a message would make it
  unreadable while protecting next to nothing (such a credential can be guessed). Short
  values are still masked wherever their position is known — header values of
  authorization-like headers and secret query parameters of URLs.
* **Encoded forms.** A value is also searched for percent-encoded (as it appears in a URL)
  and JSON-escaped (as it appears in a quoted response body), since those are the shapes
  in which a secret with special characters would otherwise slip through.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus, unquote_plus

__all__ = ["MASK", "MIN_SECRET_LENGTH", "Secrets", "is_secret_header", "is_secret_param"]

MASK = "***"
MIN_SECRET_LENGTH = 4

_SECRET_HEADER_WORDS = ("token", "key", "secret", "password")
_ALWAYS_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie"}
)
_SECRET_PARAM_WORDS = ("token", "secret", "password", "apikey", "api_key", "api-key")
_SECRET_PARAM_NAMES = frozenset({"key", "sig", "signature", "auth"})


def is_secret_header(name: str) -> bool:
    """§8.4: `Authorization`, `Cookie` and names containing token/key/secret/password."""
    lower = name.lower()
    return lower in _ALWAYS_SECRET_HEADERS or any(w in lower for w in _SECRET_HEADER_WORDS)


def is_secret_param(name: str) -> bool:
    """Query parameter names whose values are masked in printed URLs even when reqon did
    not put them there itself (a key written into a path by hand, a signed URL)."""
    lower = name.lower()
    return lower in _SECRET_PARAM_NAMES or any(w in lower for w in _SECRET_PARAM_WORDS)


class Secrets:
    """The secret values of one run, and the redaction of text, URLs and headers."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        self._query_names: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._stale = False
        for value in values:
            self.add(value)

    def add(self, value: str) -> None:
        """Remember a credential or token; empty values are ignored."""
        if not value:
            return
        forms = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
        new = {form for form in forms if len(form) >= MIN_SECRET_LENGTH} - self._values
        if new:
            self._values |= new
            self._stale = True

    def add_query_name(self, name: str) -> None:
        """A query parameter that carries an API key (`api_key { query: ... }`)."""
        self._query_names.add(name.lower())

    def __contains__(self, value: str) -> bool:
        return value in self._values

    def values(self) -> list[str]:
        """The secret values known so far, to seal for a remote worker's redaction."""
        return sorted(self._values)

    def redact(self, text: str) -> str:
        """`text` with every known secret value replaced by `***`, longest values first."""
        pattern = self._compiled()
        if pattern is None:
            return text
        return pattern.sub(MASK, text)

    def redact_url(self, url: str) -> str:
        """A URL fit for printing: secret query values and a userinfo password masked."""
        if "?" in url or "@" in url:
            url = self._mask_url_parts(url)
        return self.redact(url)

    def redact_headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        """Headers fit for logging: authorization-like values masked, others redacted."""
        return {
            name: MASK if is_secret_header(name) else self.redact(value)
            for name, value in headers.items()
        }

    def _compiled(self) -> re.Pattern[str] | None:
        if self._stale:
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, ordered)))
            self._stale = False
        return self._pattern

    def _mask_url_parts(self, url: str) -> str:
        head, hash_mark, fragment = url.partition("#")
        base, question, query = head.partition("?")
        base = _mask_userinfo(base)
        if question:
            query = "&".join(self._mask_pair(pair) for pair in query.split("&"))
        return base + question + query + hash_mark + fragment

    def _mask_pair(self, pair: str) -> str:
        name, equals, _ = pair.partition("=")
        if not equals:
            return pair
        plain = unquote_plus(name)
        if plain.lower() in self._query_names or is_secret_param(plain):
            return f"{name}={MASK}"
        return pair


def _mask_userinfo(base: str) -> str:
    """`http://user:pw@host/...` → `http://user:***@host/...`."""
    scheme, sep, rest = base.partition("://")
    if not sep:
        return base
    authority, slash, path = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if not at or ":" not in userinfo:
        return base
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:{MASK}@{host}{slash}{path}"
