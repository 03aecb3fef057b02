"""`runyard images seal-password`: the sealed text opens with the installation's key, for its host only."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from runyard.cli.main import cli
from runyard.secrets import SecretBox
from runyard.source.image_locations import load_registry_credentials


def test_a_sealed_password_opens_in_the_credentials_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = CliRunner().invoke(
        cli, ["images", "seal-password", "--host", "reg:5000", "--data-dir", str(data)], input="pw-123\n", env={}
    )
    assert result.exit_code == 0, result.output
    sealed = result.output.strip()
    assert sealed.startswith("v1:") and "pw-123" not in sealed
    path = tmp_path / "registries.toml"
    path.write_text(f'[[registry]]\nhost = "reg:5000"\nusername = "u"\npassword = "{sealed}"\n')
    found = load_registry_credentials(path, SecretBox.load_or_create(data))
    assert found["reg:5000"].credential.password == "pw-123"


def test_no_password_on_stdin_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["images", "seal-password", "--host", "r", "--data-dir", str(tmp_path)], input="", env={}
    )
    assert result.exit_code == 2 and "no password on stdin" in result.output
