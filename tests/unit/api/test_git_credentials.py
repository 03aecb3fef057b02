"""The API edge of git credentials: what a private key must be, and what a listing shows."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from runyard.api.git_credentials import check_private_key, summary
from runyard.control.model.git_credential import GitCredential
from runyard.errors import InvalidInput


def _keygen(path: Path, *args: str) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-C", "", "-f", str(path), *args], check=True)
    return path.read_text()


def test_an_unencrypted_openssh_or_pem_key_is_accepted(tmp_path: Path) -> None:
    check_private_key(_keygen(tmp_path / "openssh", "-N", ""))
    check_private_key(_keygen(tmp_path / "pem", "-N", "", "-m", "PEM"))


def test_a_key_with_a_passphrase_or_no_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="passphrase"):
        check_private_key(_keygen(tmp_path / "locked", "-N", "correct horse"))
    with pytest.raises(InvalidInput, match="does not hold a private key"):
        check_private_key(Path(f"{tmp_path / 'locked'}.pub").read_text())
    with pytest.raises(InvalidInput, match="does not hold a private key"):
        check_private_key("hello")


def test_a_summary_never_shows_the_secret() -> None:
    https = GitCredential("0", "forge", "id1", "https://h", "HTTPS", "v1:sealed", 1.0, username="deploy")
    ssh = GitCredential("0", "box", "id2", "git@h:", "SSH", "v1:sealed", 1.0, known_hosts="h ssh-ed25519 AAAA\n")
    assert summary(https) == {
        "Name": "forge",
        "UrlPrefix": "https://h",
        "Type": "HTTPS",
        "CreatedAt": 1.0,
        "Username": "deploy",
    }
    assert summary(ssh)["HostKeyChecking"] == "PINNED"
    assert "v1:sealed" not in str(summary(https)) + str(summary(ssh))
