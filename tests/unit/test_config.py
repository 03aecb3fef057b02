from __future__ import annotations

from pathlib import Path

import pytest

from runyard.config import Settings, SettingsError, load_settings


def test_defaults() -> None:
    settings = load_settings(env={})
    assert (settings.host, settings.port, settings.http_port, settings.https_port) == ("127.0.0.1", 9000, 9080, 9443)
    assert (settings.region, settings.account_id) == ("us-east-1", "000000000000")
    assert settings.quotas.connections == 10
    assert settings.effective_database_url == f"sqlite:///{settings.data_dir / 'runyard.db'}"


def test_layers_file_then_env_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "runyard.toml"
    config.write_text('port = 9100\nregion = "eu-west-1"\n[quotas]\nconnections = 3\n')
    env = {"RUNYARD_PORT": "9200", "RUNYARD_QUOTA_SERVICES": "7"}
    settings = load_settings(env=env, config_file=config, flags={"port": 9300, "region": None})
    assert settings.port == 9300
    assert settings.region == "eu-west-1"
    assert (settings.quotas.connections, settings.quotas.services) == (3, 7)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RUNYARD_PORT": "ninety"}, "expected an integer"),
        ({"RUNYARD_PORT": "70000"}, "port number"),
        ({"RUNYARD_ACCOUNT_ID": "123"}, "12 digits"),
        ({"RUNYARD_REGION": "mars"}, "region"),
        ({"RUNYARD_ACCESS_KEY_ID": "AKIA"}, "together"),
        ({"RUNYARD_QUOTA_CONNECTIONS": "many"}, "expected an integer"),
        ({"RUNYARD_RUNTIME": "kubernetes"}, "runtime must be one of auto/process/oci"),
    ],
)
def test_bad_values_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(env=env)


def test_unknown_file_keys_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "runyard.toml"
    config.write_text("prot = 1\n")
    with pytest.raises(SettingsError, match="unknown setting 'prot'"):
        load_settings(env={}, config_file=config)


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]
