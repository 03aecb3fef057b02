"""A connection's provider credential, sealed: stored apart from the connection so no listing ever reads it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

SEALED = "SEALED"


@dataclass(frozen=True, slots=True)
class ConnectionCredential:
    KIND: ClassVar[str] = "connection.credential"
    connection_key: str  # the record key of its connection (App Runner ARN or CodeConnections account/id)
    account: str
    region: str
    name: str  # the connection's name
    provider_account: str
    sealed_token: str  # SecretBox output, bound to connection_key; never the token itself
    created_at: float
    status: str = SEALED

    @property
    def key(self) -> str:
        return self.connection_key
