"""Where the bundled example missions (and the demo API's OpenAPI document) are."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

_REPO_EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"


def examples_dir() -> Path:
    """Examples ship in the wheel as `reqon/examples`; a source checkout has them at the top."""
    packaged = resources.files("reqon").joinpath("examples")
    if packaged.is_dir():
        return Path(str(packaged))
    return _REPO_EXAMPLES


def openapi_document() -> Path:
    """The demo API's own OpenAPI document, served at GET /openapi.yaml."""
    return examples_dir() / "openapi" / "bookstore.yaml"
