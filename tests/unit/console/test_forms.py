"""The console's forms: a wizard draft or a configuration edit becomes the same domain objects the API builds."""

from __future__ import annotations

import re

import pytest

from runyard.console import forms
from runyard.control.model.service import (
    CodeSource,
    HealthCheckSpec,
    ImageSource,
    InstanceSpec,
    ServiceSpec,
    SourceSpec,
)
from runyard.errors import InvalidInput

RUNTIMES = {"PYTHON_3": "Python 3.11.2", "NODEJS_18": "Node.js 18.19.0"}

COMPLETE = {
    "repository_type": ["code"],
    "repository_url": ["file:///srv/git/app"],
    "branch": ["main"],
    "deployment_trigger": ["automatic"],
    "configuration_source": ["API"],
    "runtime": ["PYTHON_3"],
    "build_command": ["pip install -r requirements.txt"],
    "start_command": ["python app.py"],
    "port": ["8000"],
    "service_name": ["my-service"],
    "cpu": ["0.5 vCPU"],
    "memory": ["1 GB"],
    "env_name": ["GREETING", "", "MODE"],
    "env_value": ["hello", "", "fast"],
    "hc_protocol": ["HTTP"],
    "hc_path": ["/health"],
    "hc_interval": ["5"],
    "hc_timeout": ["2"],
    "hc_healthy": ["1"],
    "hc_unhealthy": ["3"],
    "tag_key": ["team"],
    "tag_value": ["web"],
}


def draft(**changes: list[str]) -> forms.Draft:
    return forms.Draft.from_form({**COMPLETE, **changes})


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        ("RUNNING", "Running"),
        ("OPERATION_IN_PROGRESS", "Operation in progress"),
        ("PAUSED", "Paused"),
        ("CREATE_FAILED", "Create failed"),
        ("DELETE_FAILED", "Delete failed"),
        ("DELETED", "Deleted"),
    ],
)
def test_status_words_are_the_consoles(status: str, shown: str) -> None:
    assert forms.status_words(status) == shown


def test_constants_read_as_words() -> None:
    assert forms.words("CREATE_SERVICE") == "Create service"
    assert forms.words("ROLLBACK_SUCCEEDED") == "Rollback succeeded"


def test_a_complete_draft_is_the_createservice_configuration() -> None:
    spec = forms.service_spec(draft(), runtimes=RUNTIMES)
    assert spec == ServiceSpec(
        source=SourceSpec(
            code=CodeSource(
                repository_url="file:///srv/git/app",
                branch="main",
                configuration_source="API",
                runtime="PYTHON_3",
                build_command="pip install -r requirements.txt",
                start_command="python app.py",
                port="8000",
                env=(("GREETING", "hello"), ("MODE", "fast")),  # the empty row is an unused row
            ),
            image=None,
            auto_deployments=True,
        ),
        instance=InstanceSpec(cpu=512, memory=1024),
        health_check=HealthCheckSpec(
            protocol="HTTP", path="/health", interval=5, timeout=2, healthy_threshold=1, unhealthy_threshold=3
        ),
    )
    assert forms.tags(draft()) == [("team", "web")]


def test_a_configuration_file_leaves_build_and_run_settings_to_the_file() -> None:
    spec = forms.service_spec(draft(configuration_source=["REPOSITORY"], runtime=[""]), runtimes=RUNTIMES)
    code = spec.source.code
    assert code is not None
    assert (code.configuration_source, code.runtime, code.start_command, code.port, code.env) == (
        "REPOSITORY",
        None,
        None,
        None,
        (),
    )


def test_an_image_draft_is_an_image_source() -> None:
    spec = forms.service_spec(
        draft(repository_type=["image"], image_identifier=["public.ecr.aws/x/y:1"], deployment_trigger=["manual"]),
        runtimes=RUNTIMES,
    )
    assert spec.source == SourceSpec(
        code=None,
        image=ImageSource(
            identifier="public.ecr.aws/x/y:1",
            repository_type="ECR_PUBLIC",
            port="8000",
            start_command="python app.py",
            env=(("GREETING", "hello"), ("MODE", "fast")),
        ),
        auto_deployments=False,
    )


@pytest.mark.parametrize(
    ("step", "changes", "message"),
    [
        ("source", {"repository_url": [""]}, "Enter the repository URL."),
        ("source", {"branch": [""]}, "Enter the branch to deploy."),
        ("build", {"runtime": ["RUBY_31"]}, "Choose a runtime (PYTHON_3, NODEJS_18)."),
        ("build", {"start_command": [""]}, "Enter the start command."),
        ("build", {"port": ["80a"]}, "Port must be a number from 1 to 65535, got '80a'."),
        ("service", {"service_name": ["ab"]}, "The service name must be 4 to 40"),
        ("service", {"service_name": ["-leading-dash"]}, "The service name must be 4 to 40"),
        ("service", {"env_name": ["", "X"], "env_value": ["orphan", "1"]}, "Every environment variable needs a name"),
        ("service", {"env_name": ["X", "X"], "env_value": ["1", "2"]}, "The environment variable X is given twice."),
        ("service", {"hc_interval": ["0"]}, "Interval must be a whole number from 1 to 20, got '0'."),
        ("service", {"hc_path": ["health"]}, "The health check path starts with '/'."),
    ],
)
def test_each_step_names_what_is_missing(step: str, changes: dict[str, list[str]], message: str) -> None:
    errors = forms.step_errors(draft(**changes), step, runtimes=RUNTIMES)
    assert any(error.startswith(message) for error in errors), errors
    with pytest.raises(InvalidInput, match=re.escape(message[:20])):
        forms.service_spec(draft(**changes), runtimes=RUNTIMES)


def test_hidden_fields_carry_the_other_steps_through_and_read_back_the_same() -> None:
    complete = draft()
    carried = complete.hidden_fields(shown=forms.STEP_FIELDS["build"])
    names = {name for name, _ in carried}
    assert "runtime" not in names and "start_command" not in names
    assert ("env_name", "GREETING") in carried and ("tag_value", "web") in carried
    posted: dict[str, list[str]] = {}
    for name, value in [*carried, ("runtime", "PYTHON_3"), ("start_command", "python app.py"), ("port", "8000")]:
        posted.setdefault(name, []).append(value)
    posted["configuration_source"] = ["API"]
    posted["build_command"] = ["pip install -r requirements.txt"]
    assert forms.Draft.from_form(posted) == complete


def test_an_edit_opens_with_the_current_configuration_and_saves_as_an_update() -> None:
    current = forms.service_spec(draft(), runtimes=RUNTIMES)
    current = ServiceSpec(
        source=SourceSpec(
            code=CodeSource(**{**_fields(current.source.code), "secrets": (("TOKEN", "arn:secret"),)}),
            image=None,
            auto_deployments=True,
            connection_arn="arn:aws:apprunner:us-east-1:000000000000:connection/gh/abc",
        ),
        instance=current.instance,
        health_check=current.health_check,
    )
    opened = forms.ConfigEdit.of(current, "arn:asc")
    assert (opened.cpu, opened.memory, opened.env, opened.deployment_trigger) == (
        "0.5 vCPU",
        "1 GB",
        (("GREETING", "hello"), ("MODE", "fast")),
        "automatic",
    )
    posted = {
        "branch": ["release"],
        "deployment_trigger": ["manual"],
        "runtime": ["PYTHON_3"],
        "build_command": [""],
        "start_command": ["python app.py --fast"],
        "port": ["8000"],
        "cpu": ["1 vCPU"],
        "memory": ["2 GB"],
        "env_name": ["GREETING", ""],
        "env_value": ["changed", ""],
        "autoscaling_arn": ["arn:asc"],
        "hc_protocol": ["TCP"],
        "hc_path": ["/ignored"],
        "hc_interval": ["10"],
        "hc_timeout": ["5"],
        "hc_healthy": ["1"],
        "hc_unhealthy": ["5"],
    }
    update = forms.service_update(forms.ConfigEdit.from_form(posted), current, runtimes=RUNTIMES)
    new = update.applied_to(current)
    code = new.source.code
    assert code is not None
    assert (code.branch, code.start_command, code.build_command, code.env) == (
        "release",
        "python app.py --fast",
        None,
        (("GREETING", "changed"),),
    )
    # What the console does not edit stays: secrets, the connection, the source directory.
    assert code.secrets == (("TOKEN", "arn:secret"),)
    assert new.source.connection_arn == current.source.connection_arn
    assert new.source.auto_deployments is False
    assert new.instance == InstanceSpec(cpu=1024, memory=2048)
    assert new.health_check == HealthCheckSpec()  # TCP: the path is the default "/"
    assert update.auto_scaling_configuration_arn == "arn:asc"


def test_a_bad_edit_is_refused_before_any_command() -> None:
    current = forms.service_spec(draft(), runtimes=RUNTIMES)
    edit = forms.ConfigEdit.from_form(
        {"branch": ["main"], "runtime": ["PYTHON_3"], "start_command": ["x"], "port": ["0"]}
    )
    with pytest.raises(InvalidInput, match="Port must be a number"):
        forms.service_update(edit, current, runtimes=RUNTIMES)


def _fields(code: CodeSource | None) -> dict[str, object]:
    assert code is not None
    return {name: getattr(code, name) for name in CodeSource.__slots__}  # type: ignore[attr-defined]
