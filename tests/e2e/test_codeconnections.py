"""CodeConnections and CodeStar Connections through real boto3 clients against a real server.

Connections are global per account, so a listing also shows other tests' connections: assertions
look for this test's own ARNs (or use a host filter, hosts being regional) instead of whole lists.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore import xform_name
from botocore.exceptions import ClientError

from tests.support import RunyardProcess, unique_region

ACCOUNT = "000000000000"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
NAMESPACES = ("codeconnections", "codestar-connections")


def _name(prefix: str = "conn") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


def _body(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def _other_form(arn: str) -> str:
    """The same resource's ARN in the other namespace."""
    if ":codeconnections:" in arn:
        return arn.replace(":codeconnections:", ":codestar-connections:", 1)
    return arn.replace(":codestar-connections:", ":codeconnections:", 1)


def _conn_id(arn: str) -> str:
    return arn.rsplit("/", 1)[1]


@pytest.fixture
def cc(server: RunyardProcess, region: str) -> Any:
    return server.client("codeconnections", region)


@pytest.fixture
def cs(server: RunyardProcess, region: str) -> Any:
    return server.client("codestar-connections", region)


@pytest.fixture
def cleanup(server: RunyardProcess, region: str) -> Iterator[list[str]]:
    """ARNs of connections to delete afterwards (connections are global and count toward a quota)."""
    arns: list[str] = []
    yield arns
    client = server.client("codeconnections", region)
    for arn in arns:
        try:
            client.delete_connection(ConnectionArn=arn)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise


@pytest.fixture
def create(cc: Any, cleanup: list[str]) -> Callable[..., str]:
    def make(client: Any = None, **params: Any) -> str:
        params.setdefault("ConnectionName", _name())
        if "HostArn" not in params:
            params.setdefault("ProviderType", "GitHub")
        arn: str = (client or cc).create_connection(**params)["ConnectionArn"]
        cleanup.append(arn)
        return arn

    return make


def _listed_arns(client: Any, **filters: Any) -> list[str]:
    return [c["ConnectionArn"] for c in client.list_connections(**filters)["Connections"]]


def _names(client: Any) -> set[str]:
    return {c["ConnectionName"] for c in client.list_connections()["Connections"]}


# -- connections ------------------------------------------------------------------------------


def test_create_connection_answers_a_codeconnections_arn_and_echoes_tags(
    cc: Any, region: str, cleanup: list[str]
) -> None:
    name = _name()
    tags = [{"Key": "team", "Value": "platform"}, {"Key": "empty", "Value": ""}]
    created = cc.create_connection(ConnectionName=name, ProviderType="GitHub", Tags=tags)
    cleanup.append(created["ConnectionArn"])

    assert created["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert re.fullmatch(rf"arn:aws:codeconnections:{region}:{ACCOUNT}:connection/{UUID}", created["ConnectionArn"])
    assert created["Tags"] == tags
    connection = cc.get_connection(ConnectionArn=created["ConnectionArn"])["Connection"]
    assert connection == {
        "ConnectionName": name,
        "ConnectionArn": created["ConnectionArn"],
        "ProviderType": "GitHub",
        "OwnerAccountId": ACCOUNT,
        "ConnectionStatus": "PENDING",
    }


def test_create_connection_without_tags_answers_no_tags(cc: Any, cleanup: list[str]) -> None:
    created = cc.create_connection(ConnectionName=_name(), ProviderType="Bitbucket")
    cleanup.append(created["ConnectionArn"])
    assert set(_body(created)) == {"ConnectionArn"}


def test_codestar_create_connection_answers_a_codestar_arn(cs: Any, region: str, cleanup: list[str]) -> None:
    name = _name()
    created = cs.create_connection(ConnectionName=name, ProviderType="GitLab", Tags=[{"Key": "k", "Value": "v"}])
    cleanup.append(created["ConnectionArn"])

    assert re.fullmatch(rf"arn:aws:codestar-connections:{region}:{ACCOUNT}:connection/{UUID}", created["ConnectionArn"])
    assert created["Tags"] == [{"Key": "k", "Value": "v"}]
    connection = cs.get_connection(ConnectionArn=created["ConnectionArn"])["Connection"]
    assert connection["ConnectionArn"] == created["ConnectionArn"]
    assert connection["ConnectionName"] == name
    assert connection["ProviderType"] == "GitLab"
    assert connection["ConnectionStatus"] == "PENDING"
    assert connection["OwnerAccountId"] == ACCOUNT


def test_both_namespaces_share_one_store_and_answer_in_their_own_arn_form(
    cc: Any, cs: Any, create: Callable[..., str]
) -> None:
    star_arn = create(cs)
    cc_arn = _other_form(star_arn)
    assert star_arn.startswith("arn:aws:codestar-connections:")

    # Listed and gettable through codeconnections, in its own ARN form, by either input form.
    assert cc_arn in _listed_arns(cc)
    assert star_arn not in _listed_arns(cc)
    assert cc.get_connection(ConnectionArn=cc_arn)["Connection"]["ConnectionArn"] == cc_arn
    assert cc.get_connection(ConnectionArn=star_arn)["Connection"]["ConnectionArn"] == cc_arn

    # And the other way round: created through codeconnections, seen through codestar.
    other_cc_arn = create(cc)
    other_star_arn = _other_form(other_cc_arn)
    assert other_star_arn in _listed_arns(cs)
    assert other_cc_arn not in _listed_arns(cs)
    assert cs.get_connection(ConnectionArn=other_cc_arn)["Connection"]["ConnectionArn"] == other_star_arn
    assert cs.get_connection(ConnectionArn=other_star_arn)["Connection"]["ConnectionArn"] == other_star_arn

    # Deletable through either namespace with either form.
    assert _body(cc.delete_connection(ConnectionArn=star_arn)) == {}
    with pytest.raises(ClientError) as exc:
        cs.get_connection(ConnectionArn=star_arn)
    assert _error(exc)[0] == "ResourceNotFoundException"
    assert _body(cs.delete_connection(ConnectionArn=other_cc_arn)) == {}
    with pytest.raises(ClientError) as exc:
        cc.get_connection(ConnectionArn=other_cc_arn)
    assert _error(exc)[0] == "ResourceNotFoundException"
    assert cc_arn not in _listed_arns(cc)
    assert other_star_arn not in _listed_arns(cs)


def test_connections_are_global_but_hosts_are_regional(
    server: RunyardProcess, cc: Any, region: str, create: Callable[..., str]
) -> None:
    arn = create()
    elsewhere_region = unique_region()
    elsewhere = server.client("codeconnections", elsewhere_region)

    assert arn in _listed_arns(elsewhere)
    seen = elsewhere.get_connection(ConnectionArn=arn)["Connection"]
    assert seen["ConnectionArn"] == arn
    assert f":{region}:" in seen["ConnectionArn"]

    host_arn = cc.create_host(
        Name="regional", ProviderType="GitLabSelfManaged", ProviderEndpoint="https://gitlab.example.com"
    )["HostArn"]
    assert f":{region}:" in host_arn
    assert [h["HostArn"] for h in cc.list_hosts()["Hosts"]] == [host_arn]
    assert elsewhere.list_hosts()["Hosts"] == []
    with pytest.raises(ClientError) as exc:
        elsewhere.get_host(HostArn=host_arn)
    assert _error(exc)[:2] == ("ResourceNotFoundException", 404)
    cc.delete_host(HostArn=host_arn)


def test_list_connections_provider_type_filter(cc: Any, cs: Any, create: Callable[..., str]) -> None:
    github = create(ProviderType="GitHub")
    bitbucket = create(ProviderType="Bitbucket")
    gitlab = create(cs, ProviderType="GitLab")

    only_github = cc.list_connections(ProviderTypeFilter="GitHub")["Connections"]
    assert {c["ProviderType"] for c in only_github} == {"GitHub"}
    assert github in [c["ConnectionArn"] for c in only_github]

    only_bitbucket = _listed_arns(cc, ProviderTypeFilter="Bitbucket")
    assert bitbucket in only_bitbucket
    assert github not in only_bitbucket

    only_gitlab = _listed_arns(cs, ProviderTypeFilter="GitLab")
    assert gitlab in only_gitlab
    assert _other_form(github) not in only_gitlab

    everything = _listed_arns(cc)
    assert {github, bitbucket, _other_form(gitlab)} <= set(everything)


def test_delete_connection_answers_empty_then_it_is_gone(cc: Any, create: Callable[..., str]) -> None:
    arn = create()
    deleted = cc.delete_connection(ConnectionArn=arn)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert _body(deleted) == {}

    with pytest.raises(ClientError) as exc:
        cc.get_connection(ConnectionArn=arn)
    assert _error(exc)[:2] == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as exc:
        cc.delete_connection(ConnectionArn=arn)
    assert _error(exc)[0] == "ResourceNotFoundException"
    assert arn not in _listed_arns(cc)


def test_get_connection_of_unknown_or_foreign_arn_is_not_found(cc: Any, region: str) -> None:
    for arn in (
        f"arn:aws:codeconnections:{region}:{ACCOUNT}:connection/{uuid.uuid4()}",
        f"arn:aws:codestar-connections:{region}:{ACCOUNT}:connection/{uuid.uuid4()}",
        f"arn:aws:codeconnections:{region}:{ACCOUNT}:connection/not-a-uuid",
        f"arn:aws:apprunner:{region}:{ACCOUNT}:connection/name/{uuid.uuid4().hex}",
    ):
        with pytest.raises(ClientError) as exc:
            cc.get_connection(ConnectionArn=arn)
        assert _error(exc)[0] == "ResourceNotFoundException", arn


def test_create_connection_needs_a_provider_type_or_a_host(cc: Any) -> None:
    name = _name("nothing")
    with pytest.raises(ClientError) as exc:
        cc.create_connection(ConnectionName=name)
    code, status, _ = _error(exc)
    assert code in {"ValidationException", "InvalidInputException"}
    assert status == 400
    assert name not in _names(cc)


@pytest.mark.parametrize("provider", ["GitHubEnterpriseServer", "GitLabSelfManaged"])
def test_installed_provider_connection_needs_a_host(cc: Any, provider: str) -> None:
    name = _name("installed")
    with pytest.raises(ClientError) as exc:
        cc.create_connection(ConnectionName=name, ProviderType=provider)
    code, status, _ = _error(exc)
    assert code in {"ValidationException", "InvalidInputException"}
    assert status == 400
    assert name not in _names(cc)


# -- hosts ------------------------------------------------------------------------------------


def test_host_lifecycle_with_a_connection_using_it(cc: Any, region: str, cleanup: list[str]) -> None:
    created = cc.create_host(
        Name="ghes", ProviderType="GitHubEnterpriseServer", ProviderEndpoint="https://ghe.example.com"
    )
    host_arn = created["HostArn"]
    assert re.fullmatch(rf"arn:aws:codeconnections:{region}:{ACCOUNT}:host/ghes-[0-9a-f]{{8}}", host_arn)
    assert "Tags" not in created

    host = _body(cc.get_host(HostArn=host_arn))
    assert host == {
        "Name": "ghes",
        "Status": "PENDING",
        "ProviderType": "GitHubEnterpriseServer",
        "ProviderEndpoint": "https://ghe.example.com",
    }
    listed = cc.list_hosts()["Hosts"]
    assert len(listed) == 1
    assert listed[0]["HostArn"] == host_arn
    assert listed[0]["Name"] == "ghes"
    assert listed[0]["ProviderType"] == "GitHubEnterpriseServer"
    assert listed[0]["ProviderEndpoint"] == "https://ghe.example.com"
    assert listed[0]["Status"] == "PENDING"

    assert _body(cc.update_host(HostArn=host_arn, ProviderEndpoint="https://ghe2.example.com:8443")) == {}
    assert cc.get_host(HostArn=host_arn)["ProviderEndpoint"] == "https://ghe2.example.com:8443"

    # A connection made on the host inherits the host's provider type.
    name = _name("on-host")
    conn_arn = cc.create_connection(ConnectionName=name, HostArn=host_arn)["ConnectionArn"]
    cleanup.append(conn_arn)
    connection = cc.get_connection(ConnectionArn=conn_arn)["Connection"]
    assert connection["ProviderType"] == "GitHubEnterpriseServer"
    assert connection["HostArn"] == host_arn
    assert connection["ConnectionStatus"] == "PENDING"
    assert _listed_arns(cc, HostArnFilter=host_arn) == [conn_arn]

    with pytest.raises(ClientError) as exc:
        cc.delete_host(HostArn=host_arn)
    assert _error(exc)[:2] == ("ResourceUnavailableException", 400)
    assert cc.get_host(HostArn=host_arn)["Name"] == "ghes"

    cc.delete_connection(ConnectionArn=conn_arn)
    assert _body(cc.delete_host(HostArn=host_arn)) == {}
    with pytest.raises(ClientError) as exc:
        cc.get_host(HostArn=host_arn)
    assert _error(exc)[0] == "ResourceNotFoundException"
    assert cc.list_hosts()["Hosts"] == []


def test_host_vpc_configuration_and_pages(cc: Any, region: str) -> None:
    vpc = {
        "VpcId": "vpc-12345678",
        "SubnetIds": ["subnet-12345678"],
        "SecurityGroupIds": ["sg-12345678"],
        "TlsCertificate": "-----BEGIN CERTIFICATE-----",
    }
    host_arn = cc.create_host(
        Name="private",
        ProviderType="GitHubEnterpriseServer",
        ProviderEndpoint="https://ghe.internal",
        VpcConfiguration=vpc,
    )["HostArn"]
    assert cc.get_host(HostArn=host_arn)["VpcConfiguration"] == vpc
    cc.update_host(HostArn=host_arn, VpcConfiguration={**vpc, "VpcId": "vpc-87654321"})
    assert cc.get_host(HostArn=host_arn)["VpcConfiguration"]["VpcId"] == "vpc-87654321"
    assert cc.get_host(HostArn=host_arn)["ProviderEndpoint"] == "https://ghe.internal"

    others = [
        cc.create_host(Name=f"h{i}", ProviderType="GitLabSelfManaged", ProviderEndpoint="https://gl.example")["HostArn"]
        for i in range(2)
    ]
    first = cc.list_hosts(MaxResults=2)
    second = cc.list_hosts(MaxResults=2, NextToken=first["NextToken"])
    assert "NextToken" not in second
    assert (len(first["Hosts"]), len(second["Hosts"])) == (2, 1)
    assert sorted(h["HostArn"] for h in first["Hosts"] + second["Hosts"]) == sorted([host_arn, *others])

    ghost = f"arn:aws:codeconnections:{region}:{ACCOUNT}:host/ghost-0123abcd"
    calls: list[Callable[[], Any]] = [
        lambda: cc.update_host(HostArn=ghost, ProviderEndpoint="https://x.example"),
        lambda: cc.delete_host(HostArn=ghost),
    ]
    for call in calls:
        with pytest.raises(ClientError) as exc:
            call()
        assert _error(exc)[:2] == ("ResourceNotFoundException", 404)


def test_list_connections_host_filter_and_pages(cc: Any, create: Callable[..., str]) -> None:
    host_a = cc.create_host(Name="a", ProviderType="GitLabSelfManaged", ProviderEndpoint="https://a.example")["HostArn"]
    host_b = cc.create_host(Name="b", ProviderType="GitLabSelfManaged", ProviderEndpoint="https://b.example")["HostArn"]
    on_a = [create(HostArn=host_a) for _ in range(3)]
    on_b = create(HostArn=host_b)

    first = cc.list_connections(HostArnFilter=host_a, MaxResults=2)
    assert len(first["Connections"]) == 2
    assert first["NextToken"]
    second = cc.list_connections(HostArnFilter=host_a, MaxResults=2, NextToken=first["NextToken"])
    assert len(second["Connections"]) == 1
    assert "NextToken" not in second
    paged = [c["ConnectionArn"] for c in first["Connections"] + second["Connections"]]
    assert sorted(paged) == sorted(on_a)
    assert _listed_arns(cc, HostArnFilter=host_b) == [on_b]
    assert {c["HostArn"] for c in first["Connections"]} == {host_a}
    assert _listed_arns(cc, HostArnFilter=host_b, ProviderTypeFilter="GitHub") == []


def test_connection_with_host_and_a_different_provider_type_is_refused(cc: Any) -> None:
    host_arn = cc.create_host(Name="mismatch", ProviderType="GitLabSelfManaged", ProviderEndpoint="https://g.example")[
        "HostArn"
    ]
    name = _name("mismatch")
    with pytest.raises(ClientError) as exc:
        cc.create_connection(ConnectionName=name, HostArn=host_arn, ProviderType="GitHubEnterpriseServer")
    assert _error(exc)[1] == 400
    assert _listed_arns(cc, HostArnFilter=host_arn) == []


def test_create_connection_with_an_unknown_host_is_not_found(cc: Any, region: str) -> None:
    name = _name("nohost")
    with pytest.raises(ClientError) as exc:
        cc.create_connection(
            ConnectionName=name, HostArn=f"arn:aws:codeconnections:{region}:{ACCOUNT}:host/nope-0123abcd"
        )
    assert _error(exc)[0] == "ResourceNotFoundException"
    assert name not in _names(cc)


@pytest.mark.parametrize("namespace", NAMESPACES)
@pytest.mark.parametrize("provider", ["GitHub", "Bitbucket", "GitLab"])
def test_create_host_for_a_cloud_provider_is_unsupported(
    server: RunyardProcess, region: str, namespace: str, provider: str
) -> None:
    client = server.client(namespace, region)
    with pytest.raises(ClientError) as exc:
        client.create_host(Name="cloud", ProviderType=provider, ProviderEndpoint="https://github.com")
    assert _error(exc)[:2] == ("UnsupportedProviderTypeException", 400)
    assert client.list_hosts()["Hosts"] == []


def test_codestar_hosts_use_codestar_arns_and_codeconnections_accepts_them(
    cc: Any, cs: Any, region: str, cleanup: list[str]
) -> None:
    star_host = cs.create_host(
        Name="lab", ProviderType="GitLabSelfManaged", ProviderEndpoint="https://lab.example.com"
    )["HostArn"]
    assert re.fullmatch(rf"arn:aws:codestar-connections:{region}:{ACCOUNT}:host/lab-[0-9a-f]{{8}}", star_host)
    cc_host = _other_form(star_host)
    assert [h["HostArn"] for h in cc.list_hosts()["Hosts"]] == [cc_host]
    assert cc.get_host(HostArn=star_host)["Name"] == "lab"
    assert cs.get_host(HostArn=star_host)["ProviderEndpoint"] == "https://lab.example.com"

    conn = cc.create_connection(ConnectionName=_name(), HostArn=star_host)["ConnectionArn"]
    cleanup.append(conn)
    assert cs.get_connection(ConnectionArn=conn)["Connection"]["HostArn"] == star_host
    assert cc.get_connection(ConnectionArn=conn)["Connection"]["HostArn"] == cc_host
    assert _listed_arns(cs, HostArnFilter=star_host) == [_other_form(conn)]

    # codestar's model only accepts codestar host ARNs.
    with pytest.raises(ClientError) as exc:
        cs.get_host(HostArn=cc_host)
    assert _error(exc)[1] == 400


def test_create_host_with_a_bad_endpoint_is_refused(cc: Any) -> None:
    with pytest.raises(ClientError) as exc:
        cc.create_host(Name="bad", ProviderType="GitHubEnterpriseServer", ProviderEndpoint="not a url")
    assert _error(exc)[1] == 400
    assert cc.list_hosts()["Hosts"] == []


# -- tags -------------------------------------------------------------------------------------


def _tags(client: Any, arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in client.list_tags_for_resource(ResourceArn=arn)["Tags"]}


def test_tags_on_connections_through_both_namespaces(cc: Any, cs: Any, create: Callable[..., str]) -> None:
    arn = create(Tags=[{"Key": "a", "Value": "1"}])
    assert _tags(cc, arn) == {"a": "1"}
    assert _tags(cs, _other_form(arn)) == {"a": "1"}

    assert _body(cc.tag_resource(ResourceArn=arn, Tags=[{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "9"}])) == {}
    assert _tags(cc, arn) == {"a": "9", "b": "2"}
    assert _body(cs.tag_resource(ResourceArn=_other_form(arn), Tags=[{"Key": "c", "Value": ""}])) == {}
    assert _tags(cc, arn) == {"a": "9", "b": "2", "c": ""}

    assert _body(cc.untag_resource(ResourceArn=_other_form(arn), TagKeys=["a", "absent"])) == {}
    assert _tags(cs, arn) == {"b": "2", "c": ""}
    cs.untag_resource(ResourceArn=arn, TagKeys=["b", "c"])
    assert cc.list_tags_for_resource(ResourceArn=arn)["Tags"] == []


def test_tags_on_hosts(cc: Any) -> None:
    created = cc.create_host(
        Name="tagged",
        ProviderType="GitHubEnterpriseServer",
        ProviderEndpoint="https://ghe.example.com",
        Tags=[{"Key": "env", "Value": "prod"}],
    )
    host_arn = created["HostArn"]
    assert created["Tags"] == [{"Key": "env", "Value": "prod"}]
    assert _tags(cc, host_arn) == {"env": "prod"}
    cc.tag_resource(ResourceArn=host_arn, Tags=[{"Key": "owner", "Value": "me"}])
    assert _tags(cc, host_arn) == {"env": "prod", "owner": "me"}
    cc.untag_resource(ResourceArn=host_arn, TagKeys=["env"])
    assert _tags(cc, host_arn) == {"owner": "me"}
    cc.delete_host(HostArn=host_arn)
    with pytest.raises(ClientError) as exc:
        cc.list_tags_for_resource(ResourceArn=host_arn)
    assert _error(exc)[0] == "ResourceNotFoundException"


def test_more_than_50_tags_is_limit_exceeded(cc: Any, create: Callable[..., str]) -> None:
    fifty_one = [{"Key": f"k{i}", "Value": "v"} for i in range(51)]
    name = _name("toomany")
    with pytest.raises(ClientError) as exc:
        cc.create_connection(ConnectionName=name, ProviderType="GitHub", Tags=fifty_one)
    assert _error(exc)[:2] == ("LimitExceededException", 429)
    assert name not in _names(cc)

    arn = create(Tags=fifty_one[:30])
    with pytest.raises(ClientError) as exc:
        cc.tag_resource(ResourceArn=arn, Tags=fifty_one[30:])  # 30 + 21 = 51
    assert _error(exc)[0] == "LimitExceededException"
    assert len(_tags(cc, arn)) == 30
    cc.tag_resource(ResourceArn=arn, Tags=fifty_one[30:50])  # exactly 50 is fine
    assert len(_tags(cc, arn)) == 50
    cc.tag_resource(ResourceArn=arn, Tags=[{"Key": "k0", "Value": "changed"}])  # overwriting adds nothing
    assert _tags(cc, arn)["k0"] == "changed"

    with pytest.raises(ClientError) as exc:
        cc.create_host(
            Name="toomany", ProviderType="GitLabSelfManaged", ProviderEndpoint="https://x.example", Tags=fifty_one
        )
    assert _error(exc)[0] == "LimitExceededException"
    assert cc.list_hosts()["Hosts"] == []


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_tags_of_an_unknown_resource_are_not_found(server: RunyardProcess, region: str, namespace: str) -> None:
    client = server.client(namespace, region)
    for arn in (
        f"arn:aws:{namespace}:{region}:{ACCOUNT}:connection/{uuid.uuid4()}",
        f"arn:aws:{namespace}:{region}:{ACCOUNT}:host/ghost-0123abcd",
    ):
        calls: list[Callable[[str], Any]] = [
            lambda a: client.list_tags_for_resource(ResourceArn=a),
            lambda a: client.tag_resource(ResourceArn=a, Tags=[{"Key": "k", "Value": "v"}]),
            lambda a: client.untag_resource(ResourceArn=a, TagKeys=["k"]),
        ]
        for call in calls:
            with pytest.raises(ClientError) as exc:
                call(arn)
            assert _error(exc)[0] == "ResourceNotFoundException", arn


# -- repository links and sync configurations -------------------------------------------------

_LINK_ID = "12345678-1234-1234-1234-123456789012"
UNSUPPORTED: dict[str, dict[str, Any]] = {
    "CreateRepositoryLink": {
        "ConnectionArn": f"arn:aws:codeconnections:us-east-1:{ACCOUNT}:connection/{_LINK_ID}",
        "OwnerId": "owner",
        "RepositoryName": "repo",
    },
    "GetRepositoryLink": {"RepositoryLinkId": _LINK_ID},
    "ListRepositoryLinks": {},
    "UpdateRepositoryLink": {"RepositoryLinkId": _LINK_ID},
    "DeleteRepositoryLink": {"RepositoryLinkId": _LINK_ID},
    "GetRepositorySyncStatus": {"Branch": "main", "RepositoryLinkId": _LINK_ID, "SyncType": "CFN_STACK_SYNC"},
    "ListRepositorySyncDefinitions": {"RepositoryLinkId": _LINK_ID, "SyncType": "CFN_STACK_SYNC"},
    "CreateSyncConfiguration": {
        "Branch": "main",
        "ConfigFile": "deploy.yaml",
        "RepositoryLinkId": _LINK_ID,
        "ResourceName": "stack",
        "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/sync",
        "SyncType": "CFN_STACK_SYNC",
    },
    "GetSyncConfiguration": {"SyncType": "CFN_STACK_SYNC", "ResourceName": "stack"},
    "ListSyncConfigurations": {"RepositoryLinkId": _LINK_ID, "SyncType": "CFN_STACK_SYNC"},
    "UpdateSyncConfiguration": {"ResourceName": "stack", "SyncType": "CFN_STACK_SYNC"},
    "DeleteSyncConfiguration": {"SyncType": "CFN_STACK_SYNC", "ResourceName": "stack"},
    "GetResourceSyncStatus": {"ResourceName": "stack", "SyncType": "CFN_STACK_SYNC"},
    "GetSyncBlockerSummary": {"SyncType": "CFN_STACK_SYNC", "ResourceName": "stack"},
    "UpdateSyncBlocker": {
        "Id": "blocker",
        "SyncType": "CFN_STACK_SYNC",
        "ResourceName": "stack",
        "ResolvedReason": "fixed",
    },
}


def test_the_unsupported_list_is_every_other_operation(cc: Any) -> None:
    supported = {
        "CreateConnection",
        "GetConnection",
        "ListConnections",
        "DeleteConnection",
        "CreateHost",
        "GetHost",
        "ListHosts",
        "UpdateHost",
        "DeleteHost",
        "TagResource",
        "UntagResource",
        "ListTagsForResource",
    }
    operations = set(cc.meta.service_model.operation_names)
    assert len(UNSUPPORTED) == 15
    assert operations - supported == set(UNSUPPORTED)


@pytest.mark.parametrize("namespace", NAMESPACES)
@pytest.mark.parametrize("operation", sorted(UNSUPPORTED))
def test_repository_link_and_sync_operations_are_unsupported(
    server: RunyardProcess, region: str, namespace: str, operation: str
) -> None:
    client = server.client(namespace, region)
    with pytest.raises(ClientError) as exc:
        getattr(client, xform_name(operation))(**UNSUPPORTED[operation])
    code, status, message = _error(exc)
    assert code == "UnsupportedOperationException"
    assert status == 400
    assert operation in message
    assert isinstance(exc.value, client.exceptions.UnsupportedOperationException)


# -- validation -------------------------------------------------------------------------------


def test_validation_errors_are_400_and_write_nothing(cc: Any, cs: Any) -> None:
    long_name = "n" * 33
    with pytest.raises(ClientError) as exc:
        cc.create_connection(ConnectionName=long_name, ProviderType="GitHub")
    code, status, message = _error(exc)
    assert (code, status) == ("ValidationException", 400)
    assert "connectionName" in message
    assert long_name not in _names(cc)

    with pytest.raises(ClientError) as exc:
        cs.create_connection(ConnectionName="fine", ProviderType="AzureDevOps")  # not in codestar's enum
    assert _error(exc)[:2] == ("ValidationException", 400)

    with pytest.raises(ClientError) as exc:
        cc.create_host(Name="h" * 65, ProviderType="GitHubEnterpriseServer", ProviderEndpoint="https://e.example")
    assert _error(exc)[:2] == ("ValidationException", 400)
    assert cc.list_hosts()["Hosts"] == []

    with pytest.raises(ClientError) as exc:
        cc.list_connections(MaxResults=101)
    assert _error(exc)[:2] == ("ValidationException", 400)

    arn = cc.create_connection(ConnectionName=_name(), ProviderType="GitHub")["ConnectionArn"]
    try:
        with pytest.raises(ClientError) as exc:
            cc.tag_resource(ResourceArn=arn, Tags=[{"Key": "k" * 129, "Value": "v"}])
        assert _error(exc)[:2] == ("ValidationException", 400)
        assert cc.list_tags_for_resource(ResourceArn=arn)["Tags"] == []
    finally:
        cc.delete_connection(ConnectionArn=arn)

    # Operations that model InvalidInputException answer that instead.
    with pytest.raises(ClientError) as exc:
        cc.get_repository_link(RepositoryLinkId="not-a-link-id")
    assert _error(exc)[:2] == ("InvalidInputException", 400)
    with pytest.raises(ClientError) as exc:
        cc.get_sync_configuration(SyncType="CFN_STACK_SYNC", ResourceName="bad name!")
    assert _error(exc)[:2] == ("InvalidInputException", 400)
