"""Example data for an operation's response: the document's own example when it has one,
else a value generated from the schema, the same one every time for a given seed.

No library generates OpenAPI example data deterministically and fast enough to answer
GitHub-sized schemas per request (hypothesis-jsonschema searches, and is a test tool), so
this walks the schema itself: through jsonschema-path, which follows `$ref`s, with a
depth limit that also ends cycles. Strings with a `pattern` come from rstr, seeded.
"""
from __future__ import annotations

import random
import uuid
from typing import Any

MAX_DEPTH = 6


def example_or_generated(media: Any, rng: random.Random) -> Any:
    """`media` is a jsonschema-path node of a 3.x media type (or a 2.0 response)."""
    keys = set(media.keys())
    if "example" in keys:
        return (media / "example").read_value()
    if "examples" in keys:
        examples = media / "examples"
        names = list(examples.keys())
        if names:
            first = examples / names[0]
            if isinstance(first.read_value(), dict) and "value" in set(first.keys()):
                return (first / "value").read_value()
            return first.read_value()
    if "schema" in keys:
        return generate(media / "schema", rng, 0)
    return None


def generate(schema: Any, rng: random.Random, depth: int, name: str = "value") -> Any:
    """A value that matches `schema` (a jsonschema-path node)."""
    keys = set(schema.keys()) if isinstance(schema.read_value(), dict) else set()
    if "example" in keys:
        return (schema / "example").read_value()
    if "examples" in keys and isinstance((schema / "examples").read_value(), list):
        values = (schema / "examples").read_value()
        if values:
            return values[0]
    if "const" in keys:
        return (schema / "const").read_value()
    if "enum" in keys:
        options = [v for v in (schema / "enum").read_value() if v is not None] or [None]
        return options[rng.randrange(len(options))]
    if "default" in keys:
        return (schema / "default").read_value()
    if "allOf" in keys:
        merged: dict[str, Any] = {}
        for part in schema / "allOf":
            value = generate(part, rng, depth, name)
            if isinstance(value, dict):
                merged.update(value)
        return merged
    for combinator in ("oneOf", "anyOf"):
        if combinator in keys:
            return generate(next(iter(schema / combinator)), rng, depth, name)
    kind = (schema / "type").read_value() if "type" in keys else None
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind is None:
        kind = "object" if "properties" in keys else "array" if "items" in keys else None
    if kind == "object":
        return _object(schema, keys, rng, depth)
    if kind == "array":
        if depth >= MAX_DEPTH or "items" not in keys:
            return []
        low = (schema / "minItems").read_value() if "minItems" in keys else 1
        high = (schema / "maxItems").read_value() if "maxItems" in keys else max(low, 2)
        return [generate(schema / "items", rng, depth + 1, name) for _ in range(rng.randint(low, max(low, high)))]
    if kind == "integer":
        return rng.randint(_bound(schema, keys, "minimum", 1), _bound(schema, keys, "maximum", 1000))
    if kind == "number":
        return round(rng.uniform(_bound(schema, keys, "minimum", 0), _bound(schema, keys, "maximum", 1000)), 2)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "string":
        return _string(schema, keys, rng, name)
    return None


def _object(schema: Any, keys: set[str], rng: random.Random, depth: int) -> dict[str, Any]:
    if depth >= MAX_DEPTH or "properties" not in keys:
        return {}
    required = set((schema / "required").read_value()) if "required" in keys else set()
    out: dict[str, Any] = {}
    properties = schema / "properties"
    for prop in properties.keys():
        if prop in required or depth < 2:
            out[prop] = generate(properties / prop, rng, depth + 1, prop)
    return out


def _bound(schema: Any, keys: set[str], key: str, default: int) -> int:
    value = (schema / key).read_value() if key in keys else default
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _string(schema: Any, keys: set[str], rng: random.Random, name: str) -> str:
    fmt = (schema / "format").read_value() if "format" in keys else None
    n = rng.randint(1, 9999)
    if fmt == "date-time":
        return f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z"
    if fmt == "date":
        return f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if fmt in ("uri", "url"):
        return f"https://example.com/{name}/{n}"
    if fmt == "email":
        return f"{name}{n}@example.com"
    if fmt == "uuid":
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if "pattern" in keys:
        import rstr
        return str(rstr.Rstr(rng).xeger((schema / "pattern").read_value()))
    text = f"{name}-{n}"
    low = _bound(schema, keys, "minLength", 0)
    high = _bound(schema, keys, "maxLength", 10_000)
    return (text * (low // len(text) + 1))[:max(low, min(high, len(text)))]
