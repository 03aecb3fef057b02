"""Everything survives a restart on the same data directory (SIGTERM and SIGKILL), and the generated
root credentials are kept in <data_dir>/credentials.json."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import ACCESS_KEY, RunyardProcess

ACCOUNT = "000000000000"


def without_metadata(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def populate(client: Any, region: str, suffix: str = "") -> None:
    """One of each resource kind, with tags, a deleted revision and a moved default."""
    client.create_connection(
        ConnectionName=f"persist-conn{suffix}", ProviderType="GITHUB", Tags=[{"Key": "kind", "Value": "connection"}]
    )
    client.create_connection(ConnectionName=f"persist-bb{suffix}", ProviderType="BITBUCKET")
    first = client.create_auto_scaling_configuration(
        AutoScalingConfigurationName=f"persist-asc{suffix}", MaxSize=5, Tags=[{"Key": "kind", "Value": "asc"}]
    )["AutoScalingConfiguration"]
    second = client.create_auto_scaling_configuration(
        AutoScalingConfigurationName=f"persist-asc{suffix}",
        MaxConcurrency=42,
        MinSize=2,
        MaxSize=6,
        Tags=[{"Key": "kind", "Value": "default-asc"}],
    )["AutoScalingConfiguration"]
    client.create_auto_scaling_configuration(AutoScalingConfigurationName=f"persist-asc{suffix}")
    client.delete_auto_scaling_configuration(AutoScalingConfigurationArn=first["AutoScalingConfigurationArn"])
    client.update_default_auto_scaling_configuration(AutoScalingConfigurationArn=second["AutoScalingConfigurationArn"])
    client.create_observability_configuration(
        ObservabilityConfigurationName=f"persist-obs{suffix}",
        TraceConfiguration={"Vendor": "AWSXRAY"},
        Tags=[{"Key": "kind", "Value": "observability"}],
    )
    doomed = client.create_observability_configuration(ObservabilityConfigurationName=f"persist-gone{suffix}")
    client.delete_observability_configuration(
        ObservabilityConfigurationArn=doomed["ObservabilityConfiguration"]["ObservabilityConfigurationArn"]
    )
    connector = client.create_vpc_connector(
        VpcConnectorName=f"persist-vpc{suffix}",
        Subnets=["subnet-0123456789abcdef0"],
        SecurityGroups=["sg-0123456789abcdef0"],
        Tags=[{"Key": "kind", "Value": "vpc"}],
    )["VpcConnector"]
    client.tag_resource(ResourceArn=connector["VpcConnectorArn"], Tags=[{"Key": "added", "Value": "later"}])


def snapshot(client: Any) -> dict[str, Any]:
    """Everything the API shows of a region, full descriptions and tags included."""
    connections = client.list_connections()["ConnectionSummaryList"]
    scaling = client.list_auto_scaling_configurations(LatestOnly=False)["AutoScalingConfigurationSummaryList"]
    observability = client.list_observability_configurations(LatestOnly=False)["ObservabilityConfigurationSummaryList"]
    connectors = client.list_vpc_connectors()["VpcConnectors"]
    arns = (
        [c["ConnectionArn"] for c in connections]
        + [s["AutoScalingConfigurationArn"] for s in scaling]
        + [o["ObservabilityConfigurationArn"] for o in observability]
        + [v["VpcConnectorArn"] for v in connectors]
    )
    return {
        "connections": connections,
        "auto_scaling": scaling,
        "auto_scaling_described": [
            without_metadata(
                client.describe_auto_scaling_configuration(AutoScalingConfigurationArn=s["AutoScalingConfigurationArn"])
            )
            for s in scaling
        ],
        "observability": observability,
        "observability_described": [
            without_metadata(
                client.describe_observability_configuration(
                    ObservabilityConfigurationArn=o["ObservabilityConfigurationArn"]
                )
            )
            for o in observability
        ],
        "vpc_connectors": connectors,
        "tags": {arn: client.list_tags_for_resource(ResourceArn=arn)["Tags"] for arn in arns},
        "services": client.list_services()["ServiceSummaryList"],
        "ingress": client.list_vpc_ingress_connections()["VpcIngressConnectionSummaryList"],
    }


def inactive_arns(client: Any, region: str) -> dict[str, Any]:
    """Deleted revisions are not listed, but stay describable by their partial ARNs."""
    base = f"arn:aws:apprunner:{region}:{ACCOUNT}"
    return {
        "asc-1": without_metadata(
            client.describe_auto_scaling_configuration(
                AutoScalingConfigurationArn=f"{base}:autoscalingconfiguration/persist-asc/1"
            )
        ),
        "obs-gone": without_metadata(
            client.describe_observability_configuration(
                ObservabilityConfigurationArn=f"{base}:observabilityconfiguration/persist-gone/1"
            )
        ),
    }


def test_everything_survives_restarts(fresh_server: RunyardProcess, region: str) -> None:
    client = fresh_server.start().client("apprunner", region)
    populate(client, region)
    before = snapshot(client)
    before_inactive = inactive_arns(client, region)
    # The snapshot really holds one of everything.
    assert len(before["connections"]) == 2
    assert len(before["auto_scaling"]) == 3  # the provided default and two active revisions
    assert len(before["observability"]) == 1
    assert len(before["vpc_connectors"]) == 1
    assert sum(len(tags) for tags in before["tags"].values()) == 5  # the deleted revision's tag is not listed
    assert before_inactive["asc-1"]["AutoScalingConfiguration"]["Status"] == "inactive"
    assert before_inactive["obs-gone"]["ObservabilityConfiguration"]["Status"] == "INACTIVE"
    defaults = [s for s in before["auto_scaling"] if s["IsDefault"]]
    assert [(s["AutoScalingConfigurationName"], s["AutoScalingConfigurationRevision"]) for s in defaults] == [
        ("persist-asc", 2)
    ]

    fresh_server.stop(signal.SIGTERM)
    fresh_server.start()
    client = fresh_server.client("apprunner", region)
    assert snapshot(client) == before
    assert inactive_arns(client, region) == before_inactive

    # Numbering and uniqueness carry on from the stored state.
    assert (
        client.create_auto_scaling_configuration(AutoScalingConfigurationName="persist-asc")[
            "AutoScalingConfiguration"
        ]["AutoScalingConfigurationRevision"]
        == 4
    )
    with pytest.raises(client.exceptions.InvalidRequestException):
        client.create_connection(ConnectionName="persist-conn", ProviderType="GITHUB")


def test_committed_writes_survive_sigkill(fresh_server: RunyardProcess, region: str) -> None:
    client = fresh_server.start().client("apprunner", region)
    populate(client, region)
    before = snapshot(client)

    fresh_server.stop(signal.SIGKILL)
    fresh_server.start()
    client = fresh_server.client("apprunner", region)
    assert snapshot(client) == before

    # And again, with writes made after the first restart.
    populate(client, region, suffix="-2")
    after_second_batch = snapshot(client)
    assert len(after_second_batch["connections"]) == 4
    fresh_server.stop(signal.SIGKILL)
    fresh_server.start()
    assert snapshot(fresh_server.client("apprunner", region)) == after_second_batch


def test_the_region_default_is_seeded_once(fresh_server: RunyardProcess, region: str) -> None:
    client = fresh_server.start().client("apprunner", region)
    default_arn = client.list_auto_scaling_configurations()["AutoScalingConfigurationSummaryList"][0][
        "AutoScalingConfigurationArn"
    ]

    fresh_server.stop()
    fresh_server.start()
    listed = fresh_server.client("apprunner", region).list_auto_scaling_configurations()[
        "AutoScalingConfigurationSummaryList"
    ]
    assert [s["AutoScalingConfigurationArn"] for s in listed] == [default_arn]


# -- generated credentials ------------------------------------------------------------------------------


@dataclass
class GeneratedCredentialsProcess(RunyardProcess):
    """A server started without RUNYARD_ACCESS_KEY_ID / RUNYARD_SECRET_ACCESS_KEY."""

    def env(self) -> dict[str, str]:
        env = super().env()
        env.pop("RUNYARD_ACCESS_KEY_ID", None)
        env.pop("RUNYARD_SECRET_ACCESS_KEY", None)
        return env


def cli_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("RUNYARD_", "AWS_"))}


def run_credentials_cli(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runyard", "credentials", "--data-dir", str(data_dir)],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_credentials_are_generated_when_not_configured(tmp_path: Path, region: str) -> None:
    data_dir = tmp_path / "data"
    assert run_credentials_cli(data_dir).returncode != 0  # nothing generated yet

    process = GeneratedCredentialsProcess(data_dir)
    try:
        process.start()
        path = data_dir / "credentials.json"
        assert path.exists()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        document = json.loads(path.read_text())
        key, secret = document["AccessKeyId"], document["SecretAccessKey"]
        assert key.startswith("AKIA")
        assert len(key) == 20
        assert len(secret) >= 20
        assert key != ACCESS_KEY

        client = process.client("apprunner", region, aws_access_key_id=key, aws_secret_access_key=secret)
        assert client.list_connections()["ConnectionSummaryList"] == []
        # The test suite's usual key is not this server's key.
        with pytest.raises(process.client("apprunner", region).exceptions.ClientError) as raised:
            process.client("apprunner", region).list_connections()
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403

        printed = run_credentials_cli(data_dir)
        assert printed.returncode == 0, printed.stderr
        assert key in printed.stdout
        assert secret in printed.stdout

        # A restart reuses the file rather than making new credentials.
        process.stop()
        process.start()
        assert json.loads(path.read_text()) == document
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        client = process.client("apprunner", region, aws_access_key_id=key, aws_secret_access_key=secret)
        assert client.list_connections()["ConnectionSummaryList"] == []
    finally:
        process.stop()


def test_no_credentials_file_when_configured(fresh_server: RunyardProcess, region: str) -> None:
    fresh_server.start()
    assert fresh_server.client("apprunner", region).list_connections()["ConnectionSummaryList"] == []
    assert not (fresh_server.data_dir / "credentials.json").exists()
