"""The one exception type of a running mission.

Every failure that the language can observe (a stage mode tolerating it, the `errors`
binding, the run summary) is a `RunError` carrying one of the kinds of §6.8. Keeping a
single class with a `kind` field, instead of a hierarchy, mirrors the spec: kinds are data
that flows into `errors` records and log lines, not control flow for Python `except`
clauses.
"""

from __future__ import annotations

from typing import Literal, get_args

ErrorKind = Literal[
    "http",
    "network",
    "timeout",
    "rate-limit",
    "circuit-open",
    "auth",
    "decode",
    "validation",
    "no-match",
    "retry-exhausted",
    "store",
    "runtime",
    "abort",
]

ERROR_KINDS: frozenset[str] = frozenset(get_args(ErrorKind))


class RunError(Exception):
    """A run-time failure of kind `kind` (§6.8).

    `span` is opaque here: the evaluator attaches the source span of the failing
    expression or step after the fact, because the pure value functions that raise most
    of these errors know nothing about source positions.
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        status: int | None = None,
        span: object | None = None,
    ) -> None:
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown error kind {kind!r}")
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message
        self.status = status
        self.span = span

    @classmethod
    def runtime(cls, message: str) -> RunError:
        """The common case: an expression-evaluation failure (kind `runtime`)."""
        return cls("runtime", message)

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"RunError({self.kind!r}, {self.message!r}, status={self.status!r})"


class ConfigError(Exception):
    """A problem with the mission's configuration found before the first stage (§6.1).

    Missing credentials, malformed `.env` or `--auth` files, a `base` that is not an
    absolute URL: the CLI prints `reqon: configuration error: <message>` and exits 3.
    The message never contains a credential value.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message
