"""The REPL's command table and the names completion can offer.

Both the session (which runs commands and fills `Names`) and completion (which
offers them) read these; keeping them here lets neither import the other.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

COMMANDS: dict[str, str] = {
    ":help": "show this help",
    ":load": ":load PATH — check a mission file or folder and add its declarations",
    ":run": ":run [ACTION] — run the session's pipeline, or one action, with live progress",
    ":stores": "list the session's stores and how many records each holds",
    ":show": ":show STORE — the records of a store as a table; :show source NAME — its OpenAPI operations",
    ":ast": "the syntax tree of the last input",
    ":reset": "forget every declaration, variable and store",
    ":quit": "leave the REPL (Ctrl-D does the same)",
}


@dataclass
class Names:
    """What completion can offer from the session's state."""

    sources: list[str]
    stores: list[str]
    actions: list[str]
    transforms: list[str]
    schemas: list[str]
    variables: dict[str, Any]
    store_fields: dict[str, list[str]]
    operations: dict[str, list[str]] = field(default_factory=dict)  # OpenAPI source -> its operationIds
