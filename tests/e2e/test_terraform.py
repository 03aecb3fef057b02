"""Terraform (hashicorp/aws 5.100.0) against a real Runyard: apply, an empty plan, boto3 checks, destroy.

Needs the `terraform` binary and the AWS provider as a filesystem mirror (api-contract §10): the test
writes its own CLI configuration into its temporary directory and points TF_CLI_CONFIG_FILE at it, and
runs with HOME there too, so nothing of the user's is read or written. The mirror is looked for in
RUNYARD_TF_PLUGIN_MIRROR (if set), then in MIRROR_ROOTS. Skipped when the binary or the mirror is missing.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.support import ACCESS_KEY, SECRET_KEY, RunyardProcess

pytestmark = pytest.mark.terraform

PROVIDER_VERSION = "5.100.0"
FIXTURE = Path(__file__).parent / "terraform" / "apprunner"
MIRROR_ROOTS = (
    "/opt/tf-plugins",
    "/usr/local/share/terraform/plugins",
    "/usr/share/terraform/plugins",
    "/usr/local/lib/terraform/plugins",
    "/usr/lib/terraform/plugins",
)
STEP_TIMEOUT = 300  # seconds per terraform command


def _platform() -> str:
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    return f"{platform.system().lower()}_{arch}"


def find_mirror() -> Path | None:
    """A filesystem mirror holding hashicorp/aws 5.100.0 for this platform (unpacked or packed layout)."""
    roots = [os.environ.get("RUNYARD_TF_PLUGIN_MIRROR", ""), *MIRROR_ROOTS]
    for root in filter(None, roots):
        aws = Path(root) / "registry.terraform.io" / "hashicorp" / "aws"
        unpacked = aws / PROVIDER_VERSION / _platform()
        packed = aws / f"terraform-provider-aws_{PROVIDER_VERSION}_{_platform()}.zip"
        if any(unpacked.glob("terraform-provider-aws*")) or packed.is_file():
            return Path(root)
    return None


def _cli_config(mirror: Path) -> str:
    return f"""provider_installation {{
  filesystem_mirror {{
    path    = {json.dumps(str(mirror))}
    include = ["registry.terraform.io/hashicorp/aws"]
  }}
  direct {{
    exclude = ["registry.terraform.io/hashicorp/aws"]
  }}
}}
"""


def _env(tmp_path: Path, mirror: Path, endpoint: str) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    config = tmp_path / "terraform.rc"
    config.write_text(_cli_config(mirror))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_"))}
    env.update(
        HOME=str(home),
        TF_CLI_CONFIG_FILE=str(config),
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        CHECKPOINT_DISABLE="1",
        AWS_ENDPOINT_URL_APPRUNNER=endpoint,
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_REGION="us-east-1",
        AWS_CONFIG_FILE=str(home / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def _terraform(workdir: Path, env: dict[str, str], *args: str, ok: tuple[int, ...] = (0,)) -> int:
    result = subprocess.run(
        ["terraform", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
        check=False,
    )
    assert result.returncode in ok, (
        f"terraform {' '.join(args)} exited {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return result.returncode


def test_apply_plan_destroy(fresh_server: RunyardProcess, tmp_path: Path) -> None:
    if shutil.which("terraform") is None:
        pytest.skip("terraform is not on PATH")
    mirror = find_mirror()
    if mirror is None:
        pytest.skip(f"no filesystem mirror of hashicorp/aws {PROVIDER_VERSION} for {_platform()} in {MIRROR_ROOTS}")

    server = fresh_server.start()
    workdir = tmp_path / "config"
    shutil.copytree(FIXTURE, workdir)
    suffix = uuid.uuid4().hex[:8]
    (workdir / "terraform.tfvars").write_text(f'suffix = "{suffix}"\n')
    env = _env(tmp_path, mirror, server.endpoint)

    _terraform(workdir, env, "init", "-no-color", "-input=false")
    _terraform(workdir, env, "apply", "-no-color", "-input=false", "-auto-approve")
    # Everything Terraform reads back matches what it wrote: no diff (exit 0, not 2).
    _terraform(workdir, env, "plan", "-no-color", "-input=false", "-detailed-exitcode")

    outputs = subprocess.run(
        ["terraform", "output", "-json"], cwd=workdir, env=env, capture_output=True, text=True, check=True
    )
    values = {name: item["value"] for name, item in json.loads(outputs.stdout).items()}
    client = server.client("apprunner", "us-east-1")

    connection_name = f"tf-conn-{suffix}"
    assert values["connection_name"] == connection_name
    connections = client.list_connections(ConnectionName=connection_name)["ConnectionSummaryList"]
    assert [(c["ConnectionArn"], c["ProviderType"], c["Status"]) for c in connections] == [
        (values["connection_arn"], "GITHUB", "PENDING_HANDSHAKE")
    ]
    tags = client.list_tags_for_resource(ResourceArn=values["connection_arn"])["Tags"]
    assert {t["Key"]: t["Value"] for t in tags} == {"Project": "runyard", "Purpose": "terraform-e2e"}

    asc_arn = values["auto_scaling_configuration_arn"]
    asc = client.describe_auto_scaling_configuration(AutoScalingConfigurationArn=asc_arn)["AutoScalingConfiguration"]
    assert asc["AutoScalingConfigurationName"] == f"tf-asc-{suffix}"
    assert (asc["MaxConcurrency"], asc["MinSize"], asc["MaxSize"]) == (50, 2, 10)
    assert (asc["Status"], asc["AutoScalingConfigurationRevision"], asc["Latest"]) == ("active", 1, True)
    tags = client.list_tags_for_resource(ResourceArn=asc_arn)["Tags"]
    assert {t["Key"]: t["Value"] for t in tags} == {"Project": "runyard", "Tier": "small"}

    _terraform(workdir, env, "destroy", "-no-color", "-input=false", "-auto-approve")

    assert client.list_connections(ConnectionName=connection_name)["ConnectionSummaryList"] == []
    asc = client.describe_auto_scaling_configuration(AutoScalingConfigurationArn=asc_arn)["AutoScalingConfiguration"]
    assert asc["Status"] == "inactive"
