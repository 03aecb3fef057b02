"""The console's Complete handshake: OAuth 2.0 (state + PKCE) followed with an HTTP client, and the token form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.e2e.test_connection_handshake import assert_nowhere_in_plaintext, connection_status, forge, runyard
from tests.forge.app import Forge
from tests.support import ACCESS_KEY, SECRET_KEY, RunyardProcess

__all__ = ["forge", "runyard"]  # module fixtures shared with the handshake tests
CONSOLE_REGION = "us-east-1"  # the console acts in the server's region


def csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


@contextmanager
def signed_in_browser(server: RunyardProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.endpoint) as browser:
        page = browser.get("/console/signin")
        form = {"csrf_token": csrf(page), "access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY, "next": "/"}
        assert browser.post("/console/signin", data=form).status_code == 303
        yield browser


@pytest.mark.parametrize(
    ("provider_type", "name", "pkce"), [("GITHUB", "oauth-github", True), ("BITBUCKET", "oauth-bb", False)]
)
def test_oauth_handshake_through_the_console(
    runyard: RunyardProcess, forge: Forge, provider_type: str, name: str, pkce: bool
) -> None:
    client = runyard.client("apprunner", CONSOLE_REGION)
    arn = client.create_connection(ConnectionName=name, ProviderType=provider_type)["Connection"]["ConnectionArn"]
    with signed_in_browser(runyard) as browser:
        oauth_flow(runyard, forge, browser, arn, name, pkce)


def oauth_flow(runyard: RunyardProcess, forge: Forge, browser: httpx.Client, arn: str, name: str, pkce: bool) -> None:
    client = runyard.client("apprunner", CONSOLE_REGION)
    page = browser.get("/console/connections/handshake", params={"arn": arn})
    assert page.status_code == 200 and "Complete handshake" in page.text and "Continue with" in page.text
    to_provider = browser.post("/console/connections/handshake/oauth", data={"csrf_token": csrf(page), "arn": arn})
    assert to_provider.status_code == 303
    authorize = httpx.URL(to_provider.headers["location"])
    assert str(authorize).startswith(forge.url) and authorize.params["state"]
    assert ("code_challenge" in authorize.params) is pkce

    # The provider asks the user and sends the browser back with a code.
    at_provider = httpx.get(authorize)
    assert at_provider.status_code == 302
    callback = httpx.URL(at_provider.headers["location"])
    assert callback.path == "/console/connections/oauth/callback"

    # Another browser cannot use this callback; then the right one completes the handshake.
    with signed_in_browser(runyard) as other:
        stranger = other.get(str(callback))
    assert stranger.status_code == 303 and connection_status(client, name) == "PENDING_HANDSHAKE"
    done = browser.get(str(callback))
    assert done.status_code == 303 and done.headers["location"] == "/console/connections"
    assert connection_status(client, name) == "AVAILABLE"
    listing = browser.get("/console/connections")
    assert f"Connection {name} is available ({forge.signed_in})" in listing.text

    # A callback is good once.
    browser.get(str(callback))
    assert "not started from this browser" in browser.get("/console/connections").text

    for token in forge.tokens:
        assert_nowhere_in_plaintext(token, runyard)


def test_token_form_and_errors(runyard: RunyardProcess, forge: Forge) -> None:
    client = runyard.client("apprunner", CONSOLE_REGION)
    arn = client.create_connection(ConnectionName="form-token", ProviderType="GITHUB")["Connection"]["ConnectionArn"]
    with signed_in_browser(runyard) as browser:
        token_form(runyard, forge, browser, arn)


def token_form(runyard: RunyardProcess, forge: Forge, browser: httpx.Client, arn: str) -> None:
    client = runyard.client("apprunner", CONSOLE_REGION)
    page = browser.get("/console/connections/handshake", params={"arn": arn})

    refused = browser.post(
        "/console/connections/handshake/token", data={"csrf_token": csrf(page), "arn": arn, "token": "forge_wrong"}
    )
    assert refused.status_code == 303
    assert "rejected the token" in browser.get(refused.headers["location"]).text
    assert connection_status(client, "form-token") == "PENDING_HANDSHAKE"

    forged = browser.post("/console/connections/handshake/token", data={"csrf_token": "x", "arn": arn, "token": "t"})
    assert forged.status_code == 403

    token = forge.issue_token("hubot")
    done = browser.post(
        "/console/connections/handshake/token", data={"csrf_token": csrf(page), "arn": arn, "token": token}
    )
    assert done.status_code == 303 and connection_status(client, "form-token") == "AVAILABLE"
    assert token not in browser.get("/console/connections/handshake", params={"arn": arn}).text
    assert_nowhere_in_plaintext(token, runyard)

    # Signed out: the pages send the user to sign in.
    anonymous = httpx.get(runyard.endpoint + "/console/connections/handshake", params={"arn": arn})
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/console/signin")
