"""Encryption at rest for provider tokens.

MultiFernet encrypts with the first key of TOKEN_ENCRYPTION_KEY and decrypts
with any of them, so a new key is rolled out by putting it first and the old
one is dropped once `flask rotate-token-key` has re-encrypted every row."""
from __future__ import annotations

import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app


class TokenDecryptError(Exception):
    """The stored tokens cannot be read with any configured key."""


def _fernet() -> MultiFernet:
    keys = [key.strip() for key in current_app.config["TOKEN_ENCRYPTION_KEY"].split(",") if key.strip()]
    return MultiFernet([Fernet(key.encode()) for key in keys])


def encrypt_json(data: dict) -> str:
    return _fernet().encrypt(json.dumps(data, sort_keys=True).encode()).decode()


def decrypt_json(ciphertext: str) -> dict:
    try:
        return json.loads(_fernet().decrypt(ciphertext.encode()))
    except InvalidToken as exc:
        raise TokenDecryptError("stored tokens cannot be decrypted with the configured keys") from exc


def reencrypt(ciphertext: str) -> str:
    return _fernet().rotate(ciphertext.encode()).decode()
