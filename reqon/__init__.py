"""Reqon: an interpreter for the Reqon mission language (.vague files)."""
from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
