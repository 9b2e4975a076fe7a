"""Sealed boxes: how a run's secrets reach a worker without Ray ever holding them in the clear.

Each worker makes an X25519 key pair when it starts and publishes only the public
half. The driver seals the secrets for that worker (an ephemeral X25519 key, HKDF,
AES-GCM) and sends the sealed bytes as an ordinary argument; the worker opens them
in its own memory. Whatever Ray keeps or shows of that argument (the task
specification, the object store if it were large, a log at debug level) is
ciphertext for a key that never leaves the worker process.
"""
from __future__ import annotations

import os
import pickle
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"reqon sealed run secrets v1"
_RAW = (serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class OpeningKey:
    """The worker's half: a private key that stays in its process."""

    def __init__(self) -> None:
        self._key = X25519PrivateKey.generate()

    @property
    def public(self) -> bytes:
        return self._key.public_key().public_bytes(*_RAW)

    def open(self, sealed: bytes) -> Any:
        ephemeral, nonce, box = sealed[:32], sealed[32:44], sealed[44:]
        shared = self._key.exchange(X25519PublicKey.from_public_bytes(ephemeral))
        plain = AESGCM(_derive(shared, ephemeral + self.public)).decrypt(nonce, box, None)
        return pickle.loads(plain)


def seal(value: Any, public: bytes) -> bytes:
    """`value` (pickled), readable only by the holder of the private half of `public`."""
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes(*_RAW)
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(public))
    nonce = os.urandom(12)
    box = AESGCM(_derive(shared, ephemeral_public + public)).encrypt(nonce, pickle.dumps(value), None)
    return ephemeral_public + nonce + box


def _derive(shared: bytes, salt: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_INFO).derive(shared)
