"""The root credentials every API request must be signed with.

From the settings (RUNYARD_ACCESS_KEY_ID / RUNYARD_SECRET_ACCESS_KEY), or generated on first start
into <data_dir>/credentials.json with mode 0600 and reused afterwards.
"""

from __future__ import annotations

import json
import os
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

from runyard.config import Settings

FILE_NAME = "credentials.json"
_KEY_ALPHABET = string.ascii_uppercase + string.digits


@dataclass(frozen=True, slots=True)
class RootCredentials:
    access_key_id: str
    secret_access_key: str

    def __repr__(self) -> str:  # never print the secret by accident
        return f"RootCredentials(access_key_id={self.access_key_id!r}, secret_access_key='***')"


def _generate() -> RootCredentials:
    key = "AKIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))
    return RootCredentials(key, secrets.token_urlsafe(30)[:40])


def credentials_path(settings: Settings) -> Path:
    return settings.data_dir / FILE_NAME


def load_or_create(settings: Settings) -> RootCredentials:
    if settings.access_key_id:
        return RootCredentials(settings.access_key_id, settings.secret_access_key)
    path = credentials_path(settings)
    if path.exists():
        document = json.loads(path.read_text())
        return RootCredentials(document["AccessKeyId"], document["SecretAccessKey"])
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    created = _generate()
    # Create with 0600 from the start: the secret is never readable by others, not even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"AccessKeyId": created.access_key_id, "SecretAccessKey": created.secret_access_key}, handle)
    return created


def read_existing(settings: Settings) -> RootCredentials | None:
    """The credentials a running server uses, without creating any (for `runyard credentials`)."""
    if settings.access_key_id:
        return RootCredentials(settings.access_key_id, settings.secret_access_key)
    path = credentials_path(settings)
    if not path.exists():
        return None
    document = json.loads(path.read_text())
    return RootCredentials(document["AccessKeyId"], document["SecretAccessKey"])
