"""A stand-in for a KMS client: what `python:module:factory` must return (wrap/unwrap)."""

import os
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_MASTER = secrets.token_bytes(32)  # a real KMS keeps this inside the HSM


class StubKms:
    def wrap(self, material: bytes, context: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + AESGCM(_MASTER).encrypt(nonce, material, context)

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        return AESGCM(_MASTER).decrypt(blob[:12], blob[12:], context)


def wrapper():
    return StubKms()
