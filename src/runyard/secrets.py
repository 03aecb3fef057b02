"""Secrets at rest: AES-256-GCM with one key per Runyard installation.

The key is the operator's (`RUNYARD_SECRETS_KEY`, 32 bytes in URL-safe base64) or generated on first
start into `<data_dir>/secrets.key` with mode 0600. Every sealed value is bound to a context (the
resource it belongs to) through GCM's associated data, so a ciphertext copied onto another record
does not open. Sealed text: `v1:<base64url(nonce | ciphertext+tag)>`.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_FILE = "secrets.key"
_VERSION = "v1:"
_NONCE_BYTES = 12


class SecretsError(RuntimeError):
    """The key is malformed, or a sealed value does not open with it (wrong key, wrong context, damaged)."""


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError):
        raise SecretsError(f"the secrets key in {where} is not base64") from None
    if len(key) != 32:
        raise SecretsError(f"the secrets key in {where} must be 32 bytes (AES-256), got {len(key)}")
    return key


def new_key_text() -> str:
    return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode().rstrip("=")


class SecretBox:
    """Seals and opens short secrets (tokens); the key never leaves this object."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise SecretsError("the secrets key must be 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def load_or_create(cls, data_dir: Path, operator_key: str = "") -> SecretBox:
        if operator_key:
            return cls(_decode_key(operator_key, "RUNYARD_SECRETS_KEY"))
        path = data_dir / KEY_FILE
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                # 0600 from the first byte; O_EXCL so two starting processes never write two keys.
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as handle:
                    handle.write(new_key_text() + "\n")
        return cls(_decode_key(path.read_text(), str(path)))

    def seal(self, plaintext: str, *, context: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return _VERSION + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, sealed: str, *, context: str) -> str:
        if not sealed.startswith(_VERSION):
            raise SecretsError("not a sealed value")
        try:
            raw = base64.urlsafe_b64decode(sealed.removeprefix(_VERSION))
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode()).decode()
        except (binascii.Error, ValueError, InvalidTag):
            raise SecretsError("the sealed value does not open with this key and context") from None

    def __repr__(self) -> str:
        return "SecretBox(***)"
