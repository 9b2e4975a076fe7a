"""Sealed boxes carry a run's secrets to a Ray worker (issue 15; reqon/engine/executors/sealing.py)."""
from __future__ import annotations

import pickle

import pytest

pytestmark = pytest.mark.ray  # cryptography comes with the ray extra


def test_only_the_worker_that_published_the_key_can_open_the_box() -> None:
    from cryptography.exceptions import InvalidTag

    from reqon.engine.executors.sealing import OpeningKey, seal

    worker, other = OpeningKey(), OpeningKey()
    secret = {"token": "s3cr3t-token-value", "headers": {"X-Api-Key": "k-123456"}}
    box = seal(secret, worker.public)
    assert worker.open(box) == secret
    assert b"s3cr3t-token-value" not in box and pickle.dumps(secret) not in box
    with pytest.raises(InvalidTag):
        other.open(box)
    assert seal(secret, worker.public) != box  # a fresh ephemeral key and nonce every time


def test_a_tampered_box_is_refused() -> None:
    from cryptography.exceptions import InvalidTag

    from reqon.engine.executors.sealing import OpeningKey, seal

    worker = OpeningKey()
    box = bytearray(seal(["token"], worker.public))
    box[-1] ^= 1
    with pytest.raises(InvalidTag):
        worker.open(bytes(box))
