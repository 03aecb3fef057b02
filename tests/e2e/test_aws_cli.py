"""The AWS CLI v1 (`.venv/bin/aws`) against a real server, through --endpoint-url and AWS_ENDPOINT_URL."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support import RunyardProcess

AWS = str(Path(sys.executable).parent / "aws")
ACCOUNT = "000000000000"


def aws(
    server: RunyardProcess, region: str, *args: str, endpoint: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [AWS, *args, "--output", "json"]
    if endpoint:
        command += ["--endpoint-url", server.endpoint]
    return subprocess.run(
        command, env={**server.cli_env(region), **(env or {})}, capture_output=True, text=True, timeout=60
    )


def ok(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else {}


def test_apprunner_connections_and_tags(server: RunyardProcess, region: str) -> None:
    created = ok(
        aws(
            server,
            region,
            "apprunner",
            "create-connection",
            "--connection-name",
            "cli-conn",
            "--provider-type",
            "GITHUB",
            "--tags",
            "Key=team,Value=cli",
        )
    )["Connection"]
    arn = created["ConnectionArn"]
    assert re.fullmatch(rf"arn:aws:apprunner:{region}:{ACCOUNT}:connection/cli-conn/[0-9a-f]{{32}}", arn)
    assert created["Status"] == "PENDING_HANDSHAKE"
    assert created["ProviderType"] == "GITHUB"
    assert isinstance(created["CreatedAt"], int | float)

    listed = ok(aws(server, region, "apprunner", "list-connections"))["ConnectionSummaryList"]
    assert [c["ConnectionArn"] for c in listed] == [arn]
    by_name = ok(aws(server, region, "apprunner", "list-connections", "--connection-name", "cli-conn"))
    assert [c["ConnectionName"] for c in by_name["ConnectionSummaryList"]] == ["cli-conn"]

    assert (
        ok(aws(server, region, "apprunner", "tag-resource", "--resource-arn", arn, "--tags", "Key=env,Value=dev")) == {}
    )
    tags = ok(aws(server, region, "apprunner", "list-tags-for-resource", "--resource-arn", arn))["Tags"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("env", "dev"), ("team", "cli")]

    deleted = ok(aws(server, region, "apprunner", "delete-connection", "--connection-arn", arn))["Connection"]
    assert deleted["ConnectionArn"] == arn
    assert deleted["Status"] == "DELETED"
    assert ok(aws(server, region, "apprunner", "list-connections"))["ConnectionSummaryList"] == []


def test_apprunner_auto_scaling_configurations(server: RunyardProcess, region: str) -> None:
    created = ok(
        aws(
            server,
            region,
            "apprunner",
            "create-auto-scaling-configuration",
            "--auto-scaling-configuration-name",
            "cli-asc",
            "--max-concurrency",
            "50",
            "--min-size",
            "2",
            "--max-size",
            "5",
        )
    )["AutoScalingConfiguration"]
    arn = created["AutoScalingConfigurationArn"]
    assert re.fullmatch(rf"arn:aws:apprunner:{region}:{ACCOUNT}:autoscalingconfiguration/cli-asc/1/[0-9a-f]{{32}}", arn)
    assert created["AutoScalingConfigurationRevision"] == 1
    assert created["Status"] == "active"
    assert (created["MaxConcurrency"], created["MinSize"], created["MaxSize"]) == (50, 2, 5)
    assert created["Latest"] is True

    described = ok(
        aws(server, region, "apprunner", "describe-auto-scaling-configuration", "--auto-scaling-configuration-arn", arn)
    )["AutoScalingConfiguration"]
    assert described == created

    listed = ok(aws(server, region, "apprunner", "list-auto-scaling-configurations"))[
        "AutoScalingConfigurationSummaryList"
    ]
    mine = [s for s in listed if s["AutoScalingConfigurationArn"] == arn]
    assert len(mine) == 1
    assert mine[0]["AutoScalingConfigurationName"] == "cli-asc"
    assert mine[0]["AutoScalingConfigurationRevision"] == 1
    assert "NextToken" not in ok(aws(server, region, "apprunner", "list-auto-scaling-configurations"))

    tags = ok(aws(server, region, "apprunner", "list-tags-for-resource", "--resource-arn", arn))
    assert tags["Tags"] == []


def test_errors_exit_non_zero_and_name_the_error(server: RunyardProcess, region: str) -> None:
    missing = f"arn:aws:apprunner:{region}:{ACCOUNT}:autoscalingconfiguration/missing/1/{'0' * 32}"
    result = aws(
        server, region, "apprunner", "describe-auto-scaling-configuration", "--auto-scaling-configuration-arn", missing
    )
    assert result.returncode in {254, 255}
    assert "ResourceNotFoundException" in result.stderr
    assert "DescribeAutoScalingConfiguration" in result.stderr

    bad = aws(
        server, region, "apprunner", "create-connection", "--connection-name", "bad name!", "--provider-type", "GITHUB"
    )
    assert bad.returncode in {254, 255}
    assert "InvalidRequestException" in bad.stderr
    assert ok(aws(server, region, "apprunner", "list-connections"))["ConnectionSummaryList"] == []


def test_codestar_and_codeconnections_commands(server: RunyardProcess, region: str) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    created = ok(
        aws(
            server,
            region,
            "codestar-connections",
            "create-connection",
            "--provider-type",
            "GitHub",
            "--connection-name",
            name,
        )
    )
    star_arn = created["ConnectionArn"]
    assert re.fullmatch(rf"arn:aws:codestar-connections:{region}:{ACCOUNT}:connection/[0-9a-f-]{{36}}", star_arn)
    try:
        listed = ok(aws(server, region, "codeconnections", "list-connections", "--provider-type-filter", "GitHub"))
        mine = [c for c in listed["Connections"] if c["ConnectionName"] == name]
        assert len(mine) == 1
        assert mine[0]["ConnectionArn"] == star_arn.replace(":codestar-connections:", ":codeconnections:")
        assert mine[0]["ConnectionStatus"] == "PENDING"
    finally:
        assert ok(aws(server, region, "codeconnections", "delete-connection", "--connection-arn", star_arn)) == {}
    gone = aws(server, region, "codestar-connections", "get-connection", "--connection-arn", star_arn)
    assert gone.returncode in {254, 255}
    assert "ResourceNotFoundException" in gone.stderr


@pytest.mark.parametrize("variable", ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_APPRUNNER"])
def test_endpoint_from_the_environment(server: RunyardProcess, region: str, variable: str) -> None:
    env = {variable: server.endpoint}
    created = ok(
        aws(
            server,
            region,
            "apprunner",
            "create-connection",
            "--connection-name",
            "env-conn",
            "--provider-type",
            "BITBUCKET",
            endpoint=False,
            env=env,
        )
    )["Connection"]
    listed = ok(aws(server, region, "apprunner", "list-connections", endpoint=False, env=env))
    assert [c["ConnectionArn"] for c in listed["ConnectionSummaryList"]] == [created["ConnectionArn"]]


def test_code_service_lifecycle_with_the_cli(server: RunyardProcess, region: str, tmp_path: Path) -> None:
    from tests.support import get_via_dataplane, git_repo

    repository = git_repo(tmp_path / "static", {"index.html": "served by the CLI test\n"})
    request = {
        "ServiceName": "cli-static",
        "SourceConfiguration": {
            "CodeRepository": {
                "RepositoryUrl": str(repository),  # a plain local path works as well as file://
                "SourceCodeVersion": {"Type": "BRANCH", "Value": "main"},
                "CodeConfiguration": {
                    "ConfigurationSource": "API",
                    "CodeConfigurationValues": {"Runtime": "PYTHON_3", "StartCommand": "python -m http.server $PORT"},
                },
            },
            "AutoDeploymentsEnabled": False,
        },
        "InstanceConfiguration": {"Cpu": "0.25 vCPU", "Memory": "0.5 GB"},
    }
    (tmp_path / "request.json").write_text(json.dumps(request))
    created = ok(
        aws(server, region, "apprunner", "create-service", "--cli-input-json", f"file://{tmp_path}/request.json")
    )
    arn = created["Service"]["ServiceArn"]
    assert created["Service"]["InstanceConfiguration"] == {"Cpu": "256", "Memory": "512"}
    for _ in range(300):
        described = ok(aws(server, region, "apprunner", "describe-service", "--service-arn", arn))["Service"]
        if described["Status"] != "OPERATION_IN_PROGRESS":
            break
    assert described["Status"] == "RUNNING"
    assert get_via_dataplane(server, described["ServiceUrl"], "/index.html").text == "served by the CLI test\n"
    listed = ok(aws(server, region, "apprunner", "list-operations", "--service-arn", arn))["OperationSummaryList"]
    assert [(op["Type"], op["Status"]) for op in listed] == [("CREATE_SERVICE", "SUCCEEDED")]
    assert ok(aws(server, region, "apprunner", "delete-service", "--service-arn", arn))["OperationId"]
