"""The console's forms as domain objects: the create-service wizard's draft, the configuration edit, and the
words the console shows for statuses. Pure: no I/O, no Starlette; the pages hand in the posted fields.

The wizard is stateless: every step posts all fields of the draft (the other steps' as hidden inputs), so a
draft is whatever the last form carried, and the review step shows exactly what `service_spec` will create.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace

from runyard.control.model.service import (
    CodeSource,
    HealthCheckSpec,
    ImageSource,
    InstanceSpec,
    ServiceSpec,
    ServiceUpdate,
    SourceSpec,
    cpu_units,
    memory_mb,
)
from runyard.control.ports import Tag
from runyard.errors import InvalidInput

STATUS_WORDS = {
    "RUNNING": "Running",
    "OPERATION_IN_PROGRESS": "Operation in progress",
    "PAUSED": "Paused",
    "CREATE_FAILED": "Create failed",
    "DELETE_FAILED": "Delete failed",
    "DELETED": "Deleted",
}

CPU_OPTIONS = ("0.25 vCPU", "0.5 vCPU", "1 vCPU", "2 vCPU", "4 vCPU")
MEMORY_OPTIONS = ("0.5 GB", "1 GB", "2 GB", "3 GB", "4 GB", "6 GB", "8 GB", "10 GB", "12 GB")
HEALTH_PROTOCOLS = ("TCP", "HTTP")
IMAGE_REPOSITORY_TYPES = ("ECR_PUBLIC", "ECR")

STEPS = ("source", "build", "service", "review")
STEP_TITLES = {
    "source": "Source and deployment",
    "build": "Configure build",
    "service": "Configure service",
    "review": "Review and create",
}

# The model's patterns (botocore apprunner ServiceName / Port / HealthCheck bounds): the API edge checks them
# from the model; the console, which calls the control plane directly, checks them here.
_SERVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-_]{3,39}")
_HEALTH_BOUNDS = {
    "hc_interval": ("Interval", 1, 20),
    "hc_timeout": ("Timeout", 1, 20),
    "hc_healthy": ("Healthy threshold", 1, 20),
    "hc_unhealthy": ("Unhealthy threshold", 1, 20),
}


# What the pages pass in: every posted field name with its values, in the order posted.
Posted = Mapping[str, Sequence[str]]


def status_words(status: str) -> str:
    return STATUS_WORDS.get(status, status.replace("_", " ").capitalize())


def words(constant: str) -> str:
    """CREATE_SERVICE -> "Create service", ROLLBACK_SUCCEEDED -> "Rollback succeeded"."""
    return constant.replace("_", " ").capitalize()


def _text(form: Posted, name: str, default: str = "") -> str:
    values = form.get(name)
    return values[-1].strip() if values else default


def _pairs(form: Posted, keys: str, values: str) -> tuple[tuple[str, str], ...]:
    """Rows of key/value inputs; a row with neither is an unused row, not a pair."""
    names = [v.strip() for v in form.get(keys, ())]
    texts = list(form.get(values, ()))
    texts += [""] * (len(names) - len(texts))
    return tuple((k, v) for k, v in zip(names, texts, strict=False) if k or v.strip())


def _check_pairs(pairs: Sequence[tuple[str, str]], what: str) -> list[str]:
    errors = [f"Every {what} needs a name (the value {value!r} has none)." for name, value in pairs if not name]
    seen: set[str] = set()
    for name, _ in pairs:
        if name and name in seen:
            errors.append(f"The {what} {name} is given twice.")
        seen.add(name)
    return errors


@dataclass(frozen=True, slots=True)
class Draft:
    """Everything the create-service wizard has been told so far (all text, as posted)."""

    # Source and deployment
    repository_type: str = "code"  # "code" | "image"
    connection_arn: str = ""
    repository_url: str = ""
    branch: str = "main"
    source_directory: str = ""
    image_identifier: str = ""
    image_repository_type: str = "ECR_PUBLIC"
    access_role_arn: str = ""
    deployment_trigger: str = "manual"  # "manual" | "automatic"
    # Configure build
    configuration_source: str = "API"  # "API" | "REPOSITORY"
    runtime: str = ""
    build_command: str = ""
    start_command: str = ""
    port: str = "8080"
    # Configure service
    service_name: str = ""
    cpu: str = "1 vCPU"
    memory: str = "2 GB"
    env: tuple[tuple[str, str], ...] = ()
    autoscaling_arn: str = ""  # empty: the region's default configuration
    hc_protocol: str = "TCP"
    hc_path: str = "/"
    hc_interval: str = "10"
    hc_timeout: str = "5"
    hc_healthy: str = "1"
    hc_unhealthy: str = "5"
    tags: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_form(cls, form: Posted) -> Draft:
        defaults = cls()
        values: dict[str, object] = {}
        for item in fields(cls):
            if item.name == "env":
                values["env"] = _pairs(form, "env_name", "env_value")
            elif item.name == "tags":
                values["tags"] = _pairs(form, "tag_key", "tag_value")
            else:
                values[item.name] = _text(form, item.name, getattr(defaults, item.name))
        return cls(**values)  # type: ignore[arg-type]

    def hidden_fields(self, *, shown: frozenset[str]) -> list[tuple[str, str]]:
        """(name, value) inputs that carry the draft's other fields through a step that does not show them."""
        carried: list[tuple[str, str]] = []
        for item in fields(self):
            if item.name in shown:
                continue
            value = getattr(self, item.name)
            if item.name in ("env", "tags"):
                key_name, value_name = ("env_name", "env_value") if item.name == "env" else ("tag_key", "tag_value")
                for key, text in value:
                    carried += [(key_name, key), (value_name, text)]
            else:
                carried.append((item.name, value))
        return carried

    @property
    def is_code(self) -> bool:
        return self.repository_type != "image"

    @property
    def uses_configuration_file(self) -> bool:
        return self.is_code and self.configuration_source == "REPOSITORY"


STEP_FIELDS: Mapping[str, frozenset[str]] = {
    "source": frozenset(
        {
            "repository_type",
            "connection_arn",
            "repository_url",
            "branch",
            "source_directory",
            "image_identifier",
            "image_repository_type",
            "access_role_arn",
            "deployment_trigger",
        }
    ),
    "build": frozenset({"configuration_source", "runtime", "build_command", "start_command", "port"}),
    "service": frozenset(
        {
            "service_name",
            "cpu",
            "memory",
            "env",
            "autoscaling_arn",
            "hc_protocol",
            "hc_path",
            "hc_interval",
            "hc_timeout",
            "hc_healthy",
            "hc_unhealthy",
            "tags",
        }
    ),
    "review": frozenset(),
}


def step_errors(draft: Draft, step: str, *, runtimes: Mapping[str, str]) -> list[str]:
    """What keeps the draft from leaving `step` (the control plane checks the rest when it creates)."""
    errors: list[str] = []
    if step == "source":
        if draft.repository_type not in ("code", "image"):
            errors.append("Choose a repository type.")
        elif draft.is_code:
            if not draft.repository_url:
                errors.append("Enter the repository URL.")
            if not draft.branch:
                errors.append("Enter the branch to deploy.")
        else:
            if not draft.image_identifier:
                errors.append("Enter the container image URI.")
            if draft.image_repository_type not in IMAGE_REPOSITORY_TYPES:
                errors.append("Choose the image repository type.")
        if draft.deployment_trigger not in ("manual", "automatic"):
            errors.append("Choose a deployment trigger.")
    elif step == "build":
        if draft.is_code and draft.configuration_source not in ("API", "REPOSITORY"):
            errors.append("Choose where the build configuration comes from.")
        if draft.is_code and draft.configuration_source == "API":
            if draft.runtime not in runtimes:
                errors.append("Choose a runtime" + (f" ({', '.join(runtimes)})." if runtimes else "."))
            if not draft.start_command:
                errors.append("Enter the start command.")
        if not draft.uses_configuration_file and not _is_port(draft.port):
            errors.append(f"Port must be a number from 1 to 65535, got {draft.port!r}.")
    elif step == "service":
        if not _SERVICE_NAME.fullmatch(draft.service_name):
            errors.append(
                "The service name must be 4 to 40 letters, numbers, hyphens or underscores, starting with a letter "
                "or number."
            )
        if draft.cpu not in CPU_OPTIONS:
            errors.append("Choose a virtual CPU size.")
        if draft.memory not in MEMORY_OPTIONS:
            errors.append("Choose a memory size.")
        errors += _check_pairs(draft.env, "environment variable")
        errors += _check_pairs(draft.tags, "tag")
        errors += _health_errors(draft.hc_protocol, draft.hc_path, draft)
    return errors


def all_errors(draft: Draft, *, runtimes: Mapping[str, str]) -> list[tuple[str, str]]:
    """(step, message) for every step, in order: the review step sends the user back to the first."""
    return [(step, message) for step in STEPS for message in step_errors(draft, step, runtimes=runtimes)]


def _is_port(text: str) -> bool:
    return text.isdigit() and 1 <= int(text) <= 65535


def _health_errors(protocol: str, path: str, draft: Draft | ConfigEdit) -> list[str]:
    errors = [] if protocol in HEALTH_PROTOCOLS else ["Choose a health check protocol (TCP or HTTP)."]
    if protocol == "HTTP" and not path.startswith("/"):
        errors.append("The health check path starts with '/'.")
    for name, (label, low, high) in _HEALTH_BOUNDS.items():
        text = getattr(draft, name)
        if not (text.isdigit() and low <= int(text) <= high):
            errors.append(f"{label} must be a whole number from {low} to {high}, got {text!r}.")
    return errors


def _health_check(draft: Draft | ConfigEdit) -> HealthCheckSpec:
    return HealthCheckSpec(
        protocol=draft.hc_protocol,
        path=draft.hc_path if draft.hc_protocol == "HTTP" else "/",
        interval=int(draft.hc_interval),
        timeout=int(draft.hc_timeout),
        healthy_threshold=int(draft.hc_healthy),
        unhealthy_threshold=int(draft.hc_unhealthy),
    )


def service_spec(draft: Draft, *, runtimes: Mapping[str, str]) -> ServiceSpec:
    """The CreateService configuration of a complete draft; InvalidInput naming the first problem otherwise."""
    problems = all_errors(draft, runtimes=runtimes)
    if problems:
        raise InvalidInput(problems[0][1])
    code = image = None
    if draft.is_code:
        by_api = draft.configuration_source == "API"
        code = CodeSource(
            repository_url=draft.repository_url,
            branch=draft.branch,
            source_directory=draft.source_directory or None,
            configuration_source=draft.configuration_source,
            runtime=draft.runtime if by_api else None,
            build_command=(draft.build_command or None) if by_api else None,
            start_command=draft.start_command if by_api else None,
            port=draft.port if by_api else None,
            env=draft.env if by_api else (),
        )
    else:
        image = ImageSource(
            identifier=draft.image_identifier,
            repository_type=draft.image_repository_type,
            port=draft.port,
            start_command=draft.start_command or None,
            env=draft.env,
        )
    return ServiceSpec(
        source=SourceSpec(
            code=code,
            image=image,
            auto_deployments=draft.deployment_trigger == "automatic",
            connection_arn=(draft.connection_arn or None) if draft.is_code else None,
            access_role_arn=(draft.access_role_arn or None) if not draft.is_code else None,
        ),
        instance=InstanceSpec(cpu=cpu_units(draft.cpu), memory=memory_mb(draft.memory)),
        health_check=_health_check(draft),
        auto_scaling_configuration_arn=draft.autoscaling_arn or None,
    )


def tags(draft: Draft) -> list[Tag]:
    return list(draft.tags)


# -- Configuration tab: Edit -> Save changes --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConfigEdit:
    """The editable configuration of an existing service (UpdateService's rules: name and source type stay)."""

    branch: str = ""
    deployment_trigger: str = "manual"
    runtime: str = ""
    build_command: str = ""
    start_command: str = ""
    port: str = "8080"
    cpu: str = "1 vCPU"
    memory: str = "2 GB"
    env: tuple[tuple[str, str], ...] = ()
    autoscaling_arn: str = ""
    hc_protocol: str = "TCP"
    hc_path: str = "/"
    hc_interval: str = "10"
    hc_timeout: str = "5"
    hc_healthy: str = "1"
    hc_unhealthy: str = "5"

    @classmethod
    def of(cls, spec: ServiceSpec, autoscaling_arn: str) -> ConfigEdit:
        """The form as it opens: the service's current configuration."""
        source = spec.source
        code, image = source.code, source.image
        health = spec.health_check
        return cls(
            branch=code.branch if code else "",
            deployment_trigger="automatic" if source.auto_deployments else "manual",
            runtime=(code.runtime or "") if code else "",
            build_command=(code.build_command or "") if code else "",
            start_command=(code.start_command if code else image.start_command if image else None) or "",
            port=(code.port if code else image.port if image else None) or "8080",
            cpu=_size_label(spec.instance.cpu, CPU_OPTIONS, cpu_units),
            memory=_size_label(spec.instance.memory, MEMORY_OPTIONS, memory_mb),
            env=code.env if code else image.env if image else (),
            autoscaling_arn=autoscaling_arn,
            hc_protocol=health.protocol,
            hc_path=health.path,
            hc_interval=str(health.interval),
            hc_timeout=str(health.timeout),
            hc_healthy=str(health.healthy_threshold),
            hc_unhealthy=str(health.unhealthy_threshold),
        )

    @classmethod
    def from_form(cls, form: Posted) -> ConfigEdit:
        defaults = cls()
        values: dict[str, object] = {}
        for item in fields(cls):
            if item.name == "env":
                values["env"] = _pairs(form, "env_name", "env_value")
            else:
                values[item.name] = _text(form, item.name, getattr(defaults, item.name))
        return cls(**values)  # type: ignore[arg-type]


def _size_label(value: int, options: Sequence[str], parse: Callable[[str], int]) -> str:
    for option in options:
        if parse(option) == value:
            return option
    return str(value)


def edit_errors(edit: ConfigEdit, current: ServiceSpec, *, runtimes: Mapping[str, str]) -> list[str]:
    errors: list[str] = []
    code = current.source.code
    by_api = code is None or code.configuration_source == "API"
    if code is not None and not edit.branch:
        errors.append("Enter the branch to deploy.")
    if edit.deployment_trigger not in ("manual", "automatic"):
        errors.append("Choose a deployment trigger.")
    if code is not None and by_api:
        if edit.runtime not in runtimes:
            errors.append("Choose a runtime" + (f" ({', '.join(runtimes)})." if runtimes else "."))
        if not edit.start_command:
            errors.append("Enter the start command.")
    if by_api and not _is_port(edit.port):
        errors.append(f"Port must be a number from 1 to 65535, got {edit.port!r}.")
    if edit.cpu not in CPU_OPTIONS and not edit.cpu.isdigit():
        errors.append("Choose a virtual CPU size.")
    if edit.memory not in MEMORY_OPTIONS and not edit.memory.isdigit():
        errors.append("Choose a memory size.")
    errors += _check_pairs(edit.env, "environment variable")
    errors += _health_errors(edit.hc_protocol, edit.hc_path, edit)
    return errors


def service_update(edit: ConfigEdit, current: ServiceSpec, *, runtimes: Mapping[str, str]) -> ServiceUpdate:
    """The UpdateService of an edit: every editable part, the rest (secrets, connection, directory) as it is."""
    problems = edit_errors(edit, current, runtimes=runtimes)
    if problems:
        raise InvalidInput(problems[0])
    source = current.source
    code, image = source.code, source.image
    if code is not None:
        if code.configuration_source == "API":
            code = replace(
                code,
                branch=edit.branch,
                runtime=edit.runtime,
                build_command=edit.build_command or None,
                start_command=edit.start_command,
                port=edit.port,
                env=edit.env,
            )
        else:
            code = replace(code, branch=edit.branch)
    if image is not None:
        image = replace(image, port=edit.port, start_command=edit.start_command or None, env=edit.env)
    return ServiceUpdate(
        source=replace(source, code=code, image=image, auto_deployments=edit.deployment_trigger == "automatic"),
        instance=replace(current.instance, cpu=cpu_units(edit.cpu), memory=memory_mb(edit.memory)),
        health_check=_health_check(edit),
        auto_scaling_configuration_arn=edit.autoscaling_arn or None,
    )
