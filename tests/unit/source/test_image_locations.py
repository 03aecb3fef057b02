"""Where ImageIdentifiers are pulled from here, and which registry credential a service may use."""

from __future__ import annotations

from pathlib import Path

import pytest

from runyard.secrets import SecretBox
from runyard.source.image_locations import (
    ImageLocations,
    RegistryAccess,
    RegistryConfigError,
    credential_context,
    load_registry_credentials,
    parse_registry_list,
)
from runyard.source.registry import ImageReference, ReferenceError, RegistryAuthError, RegistryCredential

ROLE = "arn:aws:iam::000000000000:role/pull-app"
LOCAL = ImageLocations(local_registry="127.0.0.1:9500")


def test_private_ecr_maps_to_the_local_registry_keeping_repository_and_tag() -> None:
    located = LOCAL.locate("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app:v3", "ECR")
    assert located == ImageReference("127.0.0.1:9500", "team/app", "v3")


def test_private_ecr_maps_to_the_configured_registry_when_there_is_one() -> None:
    locations = ImageLocations(local_registry="127.0.0.1:9500", ecr_registry="registry.internal:5000")
    assert locations.locate("123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:1", "ECR").registry == (
        "registry.internal:5000"
    )


def test_private_ecr_without_any_registry_names_the_oci_runtime() -> None:
    with pytest.raises(ReferenceError, match="--runtime oci"):
        ImageLocations().locate("123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1", "ECR")


def test_ecr_public_goes_to_the_mirror_when_configured_else_to_the_internet() -> None:
    identifier = "public.ecr.aws/nginx/nginx:latest"
    assert LOCAL.locate(identifier, "ECR_PUBLIC") == ImageReference("public.ecr.aws", "nginx/nginx", "latest")
    mirrored = ImageLocations(ecr_public_mirror="mirror.local:5000").locate(identifier, "ECR_PUBLIC")
    assert mirrored == ImageReference("mirror.local:5000", "nginx/nginx", "latest")


def test_the_repository_type_must_match_the_identifier() -> None:
    with pytest.raises(ReferenceError, match="ECR_PUBLIC"):
        LOCAL.locate("public.ecr.aws/nginx/nginx:latest", "ECR")
    with pytest.raises(ReferenceError, match="use ImageRepositoryType ECR"):
        LOCAL.locate("127.0.0.1:5000/app:1", "ECR_PUBLIC")


def test_any_other_reference_is_pulled_as_written() -> None:
    assert LOCAL.locate("127.0.0.1:5000/app:1", "ECR") == ImageReference("127.0.0.1:5000", "app", "1")


def test_the_local_registry_and_listed_ones_are_spoken_to_over_http() -> None:
    locations = ImageLocations(local_registry="127.0.0.1:9500", insecure=parse_registry_list("a:5000, b:1 c"))
    assert locations.insecure == {"a:5000", "b:1", "c"}
    assert locations.is_insecure("127.0.0.1:9500") and locations.is_insecure("b:1")
    assert not locations.is_insecure("registry.example.com")


def test_a_credential_bound_to_roles_is_used_only_with_one_of_them() -> None:
    credential = RegistryCredential("u", "p")
    locations = ImageLocations(
        credentials={"r:1": RegistryAccess(credential, frozenset({ROLE})), "open:1": RegistryAccess(credential)}
    )
    assert locations.credential("r:1", ROLE) == credential
    assert locations.credential("open:1", None) == credential
    assert locations.credential("elsewhere:1", ROLE) is None
    with pytest.raises(RegistryAuthError, match="not granted"):
        locations.credential("r:1", "arn:aws:iam::000000000000:role/other")


def test_the_credentials_file_takes_sealed_and_plain_passwords(tmp_path: Path) -> None:
    box = SecretBox.load_or_create(tmp_path)
    sealed = box.seal("s3cret", context=credential_context("r:1"))
    path = tmp_path / "registries.toml"
    path.write_text(
        f'[[registry]]\nhost = "r:1"\nusername = "u"\npassword = "{sealed}"\naccess_role_arns = ["{ROLE}"]\n'
        '[[registry]]\nhost = "plain:2"\nusername = "v"\npassword = "plain"\n'
    )
    found = load_registry_credentials(path, box)
    assert found["r:1"] == RegistryAccess(RegistryCredential("u", "s3cret"), frozenset({ROLE}))
    assert found["plain:2"].credential.password == "plain"


def test_a_password_sealed_for_another_host_does_not_open(tmp_path: Path) -> None:
    box = SecretBox.load_or_create(tmp_path)
    path = tmp_path / "registries.toml"
    sealed = box.seal("s3cret", context=credential_context("other:1"))
    path.write_text(f'[[registry]]\nhost = "r:1"\nusername = "u"\npassword = "{sealed}"\n')
    with pytest.raises(RegistryConfigError, match="does not open"):
        load_registry_credentials(path, box)


@pytest.mark.parametrize(
    "text",
    [
        '[[registry]]\nhost = "r:1"\nusername = "u"\n',
        '[[registry]]\nhost = "r:1"\nusername = "u"\npassword = "p"\ncolour = "red"\n',
        "[other]\nx = 1\n",
        '[[registry]]\nhost = "r:1"\nusername = "u"\npassword = "p"\n[[registry]]\nhost = "r:1"\nusername = "u"\n'
        'password = "p"\n',
        "not toml [",
    ],
)
def test_a_malformed_credentials_file_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "registries.toml"
    path.write_text(text)
    with pytest.raises(RegistryConfigError):
        load_registry_credentials(path, SecretBox.load_or_create(tmp_path))
