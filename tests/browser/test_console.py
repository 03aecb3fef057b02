"""The web console end to end in a real browser: Playwright driving Debian's Chromium (headless) against a
real `runyard serve`, a real git repository and a real deployed app reached through HAProxy.

Sign in; create a service from a local repository through the wizard; watch it reach Running; open its URL;
follow its application log live; read its deployment log; pause and resume; change an environment variable
and see the new value served; delete. Screenshots go to the test's tmp dir and to test-artifacts/console/.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support import ACCESS_KEY, SECRET_KEY, RunyardProcess, get_via_dataplane, git_repo

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package (`make deps` installs it)
if not CHROMIUM.exists():
    pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (run `make deps`)", allow_module_level=True)

from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
DEPLOY_TIMEOUT = 120_000  # ms: a build is a virtualenv and nothing else, usually a few seconds

APP = """\
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        print(f"served {self.path}", flush=True)
        body = f"Hello from Runyard: GREETING={os.environ.get('GREETING', '-')}".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


print("console-demo app starting", flush=True)
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        launched.close()


class Shots:
    """Numbered screenshots, in the test's tmp dir and in test-artifacts/console/ (kept by CI)."""

    def __init__(self, page: Page, directory: Path) -> None:
        self.page, self.directory, self.count = page, directory, 0
        directory.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(ARTIFACTS, ignore_errors=True)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def __call__(self, name: str) -> None:
        self.count += 1
        path = self.directory / f"{self.count:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        shutil.copy(path, ARTIFACTS / path.name)


def _served(server: RunyardProcess, url: str) -> str:
    """What the service answers now (through HAProxy, addressed by Host header: glibc does not resolve
    *.localhost as Chromium does)."""
    return get_via_dataplane(server, urlsplit(url).netloc).text


def _status(page: Page) -> Locator:
    return page.locator("#service-status")


def test_console_creates_runs_changes_and_deletes_a_service(tmp_path: Path, browser: Browser) -> None:
    server = RunyardProcess(tmp_path / "data").start()
    try:
        _walk_through(server, tmp_path, browser)
    finally:
        server.stop()


def _walk_through(server: RunyardProcess, tmp_path: Path, browser: Browser) -> None:
    repository = git_repo(tmp_path / "repo", {"app.py": APP})
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(15_000)
    shot = Shots(page, tmp_path / "screenshots")

    # Sign in: any console page sends a stranger to the sign-in form first.
    page.goto(f"{server.endpoint}/console/services")
    expect(page).to_have_url(re.compile(r"/console/signin\?next="))
    page.get_by_label("Access key ID").fill(ACCESS_KEY)
    page.get_by_label("Secret access key").fill("not the secret")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not right")
    page.get_by_label("Secret access key").fill(SECRET_KEY)
    shot("sign-in")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Services (0)")).to_be_visible()
    shot("services-empty")

    # Create service: Source and deployment -> Configure build -> Configure service -> Review and create.
    page.get_by_role("link", name="Create service").click()
    expect(page.get_by_role("heading", name="Source and deployment")).to_be_visible()
    page.get_by_label("Source code repository").check()
    page.get_by_label("Repository URL").fill(f"file://{repository}")
    page.get_by_label("Branch", exact=True).fill("main")
    page.get_by_label("Manual").check()
    shot("wizard-source")
    page.get_by_role("button", name="Next", exact=True).click()

    expect(page.get_by_role("heading", name="Configure build")).to_be_visible()
    page.get_by_label("Configure all settings here").check()
    page.get_by_label("Runtime", exact=True).select_option("PYTHON_3")
    page.get_by_label("Start command").fill("python app.py")
    page.get_by_label("Port", exact=True).fill("8080")
    shot("wizard-build")
    page.get_by_role("button", name="Next", exact=True).click()

    expect(page.get_by_role("heading", name="Configure service")).to_be_visible()
    page.get_by_role("button", name="Next", exact=True).click()  # no name yet: the step says what is missing
    expect(page.get_by_role("alert")).to_contain_text("service name")
    page.get_by_label("Service name").fill("console-demo")
    page.get_by_label("Environment variable 1 name").fill("GREETING")
    page.get_by_label("Environment variable 1 value").fill("first")
    shot("wizard-service")
    page.get_by_role("button", name="Next", exact=True).click()

    expect(page.get_by_role("heading", name="Review and create")).to_be_visible()
    expect(page.locator("dl.facts")).to_contain_text(["Source code repository", "PYTHON_3", "console-demo"])
    shot("wizard-review")
    page.get_by_role("button", name="Create and deploy").click()

    # The service dashboard: Operation in progress, then Running (the page follows the status by itself).
    expect(page.get_by_role("heading", name="console-demo")).to_be_visible()
    expect(page.get_by_text("Service overview")).to_be_visible()
    expect(_status(page)).to_have_text("Running", timeout=DEPLOY_TIMEOUT)
    shot("dashboard-running")
    expect(page.locator("dl.facts")).to_contain_text("arn:aws:apprunner:us-east-1:000000000000:service/console-demo/")

    # Open its URL: the default domain link (a *.localhost name Chromium resolves to loopback, via HAProxy).
    domain = page.locator("#default-domain")
    with page.context.expect_page() as opened:
        domain.click()
    site = opened.value
    expect(site.locator("body")).to_have_text("Hello from Runyard: GREETING=first")
    site.screenshot(path=str(tmp_path / "screenshots" / "site-first.png"))
    shutil.copy(tmp_path / "screenshots" / "site-first.png", ARTIFACTS / "site-first.png")
    service_url = str(domain.get_attribute("href"))

    # Logs tab: the application log is followed live (a request made now shows up without a reload) ...
    page.get_by_role("link", name="Logs").click()
    application = page.locator("#application-log")
    expect(application).to_contain_text("console-demo app starting")
    site.goto(service_url + "live-follow-check")
    expect(application).to_contain_text("served /live-follow-check")
    site.close()
    # ... and the deployment log lists the creation, with its full log one click away.
    deployments = page.get_by_role("table", name="Deployment logs")
    expect(deployments).to_contain_text("Create service")
    page.get_by_placeholder("Find deployment").fill("no such deployment")
    page.get_by_role("button", name="Find").click()
    expect(deployments).to_contain_text("No deployment matches")
    page.get_by_placeholder("Find deployment").fill("create")
    page.get_by_role("button", name="Find").click()
    shot("logs-tab")
    deployments.get_by_role("link", name="Create service").click()
    log = page.locator("#log-lines")
    expect(log).to_contain_text("[AppRunner]")
    expect(log).to_contain_text(re.compile(r"Deployment with ID : [0-9a-f-]+ successful"))
    shot("deployment-log")
    page.get_by_role("link", name="console-demo").click()

    # Pause and resume.
    page.get_by_role("button", name="Pause").click()
    expect(_status(page)).to_have_text("Paused", timeout=DEPLOY_TIMEOUT)
    shot("paused")
    assert _served(server, service_url) != "Hello from Runyard: GREETING=first"
    page.get_by_role("button", name="Resume").click()
    expect(_status(page)).to_have_text("Running", timeout=DEPLOY_TIMEOUT)
    assert _served(server, service_url) == "Hello from Runyard: GREETING=first"

    # Activity: every operation so far, searchable.
    page.get_by_role("link", name="Activity").click()
    operations = page.get_by_role("table", name="Operations")
    expect(operations.locator("tbody tr")).to_contain_text(["Resume service", "Pause service", "Create service"])
    page.get_by_placeholder("Find operation").fill("pause")
    page.get_by_role("button", name="Find").click()
    expect(operations.locator("tbody tr")).to_have_count(1)
    shot("activity")

    # Configuration: Edit, change the environment variable, Save changes; the service serves the new value.
    page.get_by_role("link", name="Configuration").click()
    expect(page.get_by_role("table", name="Environment variables")).to_contain_text("first")
    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_label("Environment variable 1 name")).to_have_value("GREETING")
    page.get_by_label("Environment variable 1 value").fill("second")
    shot("edit-configuration")
    page.get_by_role("button", name="Save changes").click()
    expect(_status(page)).to_have_text("Running", timeout=DEPLOY_TIMEOUT)
    assert _served(server, service_url) == "Hello from Runyard: GREETING=second"
    page.get_by_role("link", name="Configuration").click()
    expect(page.get_by_role("table", name="Environment variables")).to_contain_text("second")
    shot("configuration-changed")

    # Metrics: the requests made above are graphed once the collector has sampled them (every 10 s).
    for _ in range(4):
        _served(server, service_url)
    page.get_by_role("link", name="Metrics").click()
    requests = page.locator('figure[data-metric="Requests"]')
    for _ in range(60):
        if requests.get_attribute("data-points") != "0":
            break
        page.wait_for_timeout(1000)
        page.reload()
    expect(requests).not_to_have_attribute("data-points", "0")
    expect(requests.locator("polyline")).to_have_count(1)
    expect(page.locator("figure[data-metric] svg")).to_have_count(6)
    shot("metrics-1h")
    page.get_by_role("navigation", name="Duration").get_by_role("link", name="24h").click()
    expect(page).to_have_url(re.compile(r"range=24h"))
    expect(requests.locator("polyline")).to_have_count(1)

    # Services page: filter, status in words, default domain as a link.
    page.get_by_role("navigation", name="Navigation pane").get_by_role("link", name="Services").click()
    services = page.get_by_role("table", name="Services")
    expect(services).to_contain_text("Running")
    expect(services.get_by_role("link", name=re.compile(r"\.us-east-1\.localhost"))).to_have_attribute(
        "href", service_url
    )
    page.get_by_placeholder("Filter services").fill("nothing-like-it")
    page.get_by_role("button", name="Filter").click()
    expect(services).to_contain_text("No service matches")

    # Delete, with confirmation: the service leaves the list.
    page.goto(f"{server.endpoint}/console/services")
    services.get_by_role("link", name="console-demo").click()
    page.get_by_role("link", name="Delete").click()
    page.get_by_role("button", name="Delete").click()  # nothing typed: the browser keeps the form (required)
    page.get_by_label("To confirm deletion").fill("delete")
    shot("delete-confirm")
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("status")).to_contain_text("Deleting service console-demo")
    # The list follows the status by itself: the service leaves it once deleted (no reload by the test).
    expect(page.locator("main")).not_to_contain_text("console-demo", timeout=DEPLOY_TIMEOUT)
    shot("deleted")

    # Sign out: the console is closed again.
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/console/signin"))
    page.goto(f"{server.endpoint}/console/services")
    expect(page).to_have_url(re.compile(r"/console/signin\?next="))


def test_the_wizard_shows_refusals_and_failed_creations(tmp_path: Path, browser: Browser) -> None:
    repository = git_repo(tmp_path / "repo", {"app.py": APP})
    server = RunyardProcess(tmp_path / "data").start()
    try:
        page = browser.new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{server.endpoint}/console")
        page.get_by_label("Access key ID").fill(ACCESS_KEY)
        page.get_by_label("Secret access key").fill(SECRET_KEY)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("link", name="Create service").click()
        page.get_by_label("Repository URL").fill(f"file://{tmp_path / 'no-such-repository'}")
        page.get_by_role("button", name="Next", exact=True).click()
        page.get_by_label("Runtime", exact=True).select_option("PYTHON_3")
        page.get_by_label("Start command").fill("python app.py")
        page.get_by_role("button", name="Next", exact=True).click()
        page.get_by_label("Service name").fill("broken-app")
        page.get_by_role("button", name="Next", exact=True).click()
        page.get_by_role("button", name="Create and deploy").click()
        # The control plane refuses the source (as CreateService would): the review says why, nothing is created.
        expect(page.get_by_role("alert")).to_contain_text("no-such-repository does not exist")
        expect(page.get_by_role("heading", name="Review and create")).to_be_visible()
        page.get_by_role("button", name="Edit").first.click()
        page.get_by_label("Repository URL").fill(f"file://{repository}")
        page.get_by_role("button", name="Next", exact=True).click()
        page.get_by_label("Build command").fill("exit 3")
        page.get_by_role("button", name="Next", exact=True).click()
        page.get_by_role("button", name="Next", exact=True).click()
        expect(page.locator("dl.facts").nth(1)).to_contain_text("exit 3")
        page.get_by_role("button", name="Create and deploy").click()
        # Accepted, then the build fails: Create failed, the event log says so, the deployment log says why.
        expect(_status(page)).to_have_text("Create failed", timeout=DEPLOY_TIMEOUT)
        expect(page.locator("pre.log").first).to_contain_text("Service creation failed")
        expect(page.get_by_role("button", name="Pause")).to_be_disabled()
        page.get_by_role("table", name="Deployment logs").get_by_role("link", name="Create service").click()
        expect(page.locator("#log-lines")).to_contain_text("exit 3")
        page.screenshot(path=str(tmp_path / "create-failed.png"), full_page=True)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / "create-failed.png", ARTIFACTS / "99-create-failed.png")
    finally:
        server.stop()
