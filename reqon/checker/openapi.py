"""The operationIds of a local OpenAPI document, for E213 (§3.1.6, §4.2).

Only local documents are read; a URL document is fetched by the evaluator at
mission start.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import yaml

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def is_url(document: str) -> bool:
    return document.startswith(("http://", "https://"))


def operation_ids(path: Path) -> frozenset[str]:
    """Every operationId of an OpenAPI 3.x or Swagger 2.0 document; raises ValueError."""
    import yaml  # only missions that name a local OpenAPI document pay for PyYAML's import

    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    try:
        document = yaml.safe_load(text)  # JSON is a subset of YAML 1.2 as far as documents go
    except yaml.YAMLError as exc:
        raise ValueError(f"{path} is not valid YAML or JSON: {_yaml_problem(exc)}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("paths"), dict):
        raise ValueError(f"{path} is not an OpenAPI document (no 'paths' object)")
    found: set[str] = set()
    for item in document["paths"].values():
        if not isinstance(item, dict):
            continue
        for method in _METHODS:
            operation = item.get(method)
            if isinstance(operation, dict) and isinstance(operation.get("operationId"), str):
                found.add(operation["operationId"])
    return frozenset(found)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else problem
