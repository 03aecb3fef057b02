"""Image services in the domain model: what a new configuration rebuilds, what automatic deployments compare."""

from __future__ import annotations

from dataclasses import replace

from runyard.control.autodeploy import auto_deploys
from runyard.control.model.service import (
    CodeSource,
    ImageSource,
    Revision,
    Service,
    ServiceSpec,
    SourceSpec,
    image_port,
    needs_build,
    rerun,
    tracked_version,
)

DIGEST = "sha256:" + "ab" * 32
IMAGE = ImageSource(identifier="127.0.0.1:5000/app:1", repository_type="ECR", port="9000", env=(("A", "1"),))
REVISION = Revision(
    artifact_id=DIGEST,
    artifact_path="",
    commit_sha="",
    command="",
    port=9000,
    env=(("A", "1"),),
    image=f"127.0.0.1:5000/app@{DIGEST}",
    image_digest=DIGEST,
)


def spec(image: ImageSource = IMAGE, auto: bool | None = None) -> ServiceSpec:
    return ServiceSpec(source=SourceSpec(code=None, image=image, auto_deployments=auto))


def service(spec_: ServiceSpec, revision: Revision | None = REVISION) -> Service:
    return Service(
        arn="arn:aws:apprunner:us-east-1:000000000000:service/s/" + "0" * 32,
        name="s",
        service_id="0" * 32,
        account="000000000000",
        region="us-east-1",
        status="RUNNING",
        created_at=0.0,
        auto_scaling_configuration_arn="arn",
        spec=spec_,
        revision=revision,
    )


def test_another_image_is_pulled_again_but_run_settings_are_a_rerun() -> None:
    assert needs_build(spec(), spec(replace(IMAGE, identifier="127.0.0.1:5000/app:2")))
    assert not needs_build(spec(), spec(replace(IMAGE, port="8081", start_command="serve")))
    rerun_revision = rerun(REVISION, spec(replace(IMAGE, port="8081", start_command="serve", env=())))
    assert (rerun_revision.port, rerun_revision.command, rerun_revision.env) == (8081, "serve", ())
    assert rerun_revision.image == REVISION.image


def test_the_port_defaults_to_8080_as_app_runner_does() -> None:
    assert image_port(replace(IMAGE, port=None)) == 8080


def test_an_image_revision_has_no_artifact_directory() -> None:
    assert REVISION.from_image
    built = replace(REVISION, artifact_path="/data/builds/x", artifact_id="x", commit_sha="c" * 40)
    assert not built.from_image  # a code service packed into an image is still its build


def test_automatic_deployments_compare_the_digest_of_an_image_and_the_commit_of_code() -> None:
    assert tracked_version(service(spec())) == DIGEST
    code = ServiceSpec(source=SourceSpec(code=CodeSource(repository_url="/r", branch="main"), image=None))
    assert tracked_version(service(code, replace(REVISION, commit_sha="c" * 40))) == "c" * 40
    assert tracked_version(service(spec(), None)) is None


def test_image_services_auto_deploy_by_default_except_ecr_public() -> None:
    assert auto_deploys(service(spec()))
    assert not auto_deploys(service(spec(auto=False)))
    public = replace(IMAGE, identifier="public.ecr.aws/nginx/nginx:latest", repository_type="ECR_PUBLIC")
    assert not auto_deploys(service(spec(public)))
