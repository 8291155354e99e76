"""The dashboard at /, in a real browser: Debian's chromium, driven by Playwright.

The app runs under gunicorn, as on Heroku, with a real Celery worker where a
test needs one. Playwright never downloads a browser here: it drives the
chromium that apt installs (.ci/run installs it when missing).
"""
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import pytest
from playwright.sync_api import (BrowserContext, ConsoleMessage, Locator, Page, Response, expect,
                                 sync_playwright)

from background.expression import ALLOWED
from models import Product, db
from tests.conftest import missing_service
from tests.services import ROOT, free_port, private_redis, refusing_port, wait_for

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOT = ROOT / "docs" / "dashboard.png"
# Chromium itself logs every answer that is not a 2xx as a console error. The
# page handles 422 and 503 answers (the tests provoke them on purpose); any
# other console error, and any uncaught exception, fails the test.
HANDLED_ANSWERS = re.compile(r"Failed to load resource: .* status of (422|503) ")
# How long to wait for what a worker does, or for the page to call a job waiting
# (about 4 s): generous, since a busy CI machine is slow to start processes.
JOB_TIMEOUT_MS = 20_000
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@pytest.fixture(scope="module")
def deployment(database_url: str, tmp_path_factory) -> Iterator[dict[str, str]]:
    """What this module's gunicorn and workers share: the test database and a private Redis.

    A private Redis means a worker's queue holds only what these tests put there.
    """
    try:
        with private_redis(tmp_path_factory.mktemp("dashboard-redis")) as redis:
            # Steps slow enough to catch the progress bar part of the way.
            yield {"APP_ENV": "test", "DATABASE_URL": database_url, "REDIS_URL": redis.url,
                   "ASYNC_STEP_SECONDS": "0.3"}
    except FileNotFoundError:
        missing_service("redis-server is not on PATH")


@pytest.fixture
def environment(environment: dict[str, str], deployment: dict[str, str]) -> dict[str, str]:
    """The test deployment, on this module's database and Redis."""
    return {**environment, **deployment}


@contextmanager
def gunicorn(environment: Mapping[str, str]) -> Iterator[str]:
    """Serve wsgi:app with gunicorn on a free port, with environment; yield its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    ARTIFACTS.mkdir(exist_ok=True)
    command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "wsgi:app"]
    with open(ARTIFACTS / f"gunicorn-{port}.log", "wb") as log:
        server = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **environment},
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: serves(url, server), timeout=30)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def serves(url: str, server: subprocess.Popen) -> bool:
    if server.poll() is not None:
        raise RuntimeError(f"gunicorn exited with {server.returncode}")
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def server(deployment: dict[str, str]) -> Iterator[str]:
    """gunicorn serving this module's deployment, started once for all its tests."""
    with gunicorn(deployment) as url:
        yield url


@pytest.fixture
def web(server: str, environment: dict[str, str]) -> str:
    """The dashboard's URL; the tables are emptied after the test (by environment)."""
    return server


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[BrowserContext]:
    """Debian's chromium, headless, on a fresh profile; never a downloaded browser."""
    chromium = shutil.which("chromium")
    if chromium is None:
        missing_service("chromium is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium-profile"), executable_path=chromium,
            headless=True, args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 800},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def console_errors() -> list[str]:
    """Console errors and uncaught exceptions of the page, as they happen."""
    return []


@pytest.fixture
def page(browser: BrowserContext, console_errors: list[str]) -> Iterator[Page]:
    """A new page in the browser, recording its console errors."""

    def record(message: ConsoleMessage) -> None:
        if message.type == "error":
            console_errors.append(message.text)

    page = browser.new_page()
    page.set_default_timeout(10_000)
    page.on("console", record)
    page.on("pageerror", lambda error: console_errors.append(f"Uncaught: {error}"))
    yield page
    page.close()


def unexpected(console_errors: list[str]) -> list[str]:
    return [text for text in console_errors if not HANDLED_ANSWERS.match(text)]


def job_id(response: Response) -> str:
    """Return the id of the job that a start request created."""
    body = response.json()
    return body.get("result_id") or body["id"]


def job_row(page: Page, job: str) -> Locator:
    return page.locator(f"tr[data-job-id='{job}']")


def bar_moved(page: Page, job: str) -> None:
    """Wait until the job's progress bar is drawn part of the way: above 0, below its max."""
    # The table is redrawn at every poll, so the bar is looked up afresh each frame.
    page.wait_for_function(
        "selector => { const bar = document.querySelector(selector);"
        " return bar !== null && bar.position > 0 && bar.position < 1; }",
        arg=f"tr[data-job-id='{job}'] progress", polling="raf", timeout=JOB_TIMEOUT_MS,
    )


def test_dashboard_is_html_with_security_headers_and_only_local_assets(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert {name: response.headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS
    assets = re.findall(r'(?:src|href)="([^"]*)"', response.text)
    assert assets and all(asset.startswith("/static/") for asset in assets)
    for asset in assets:
        assert client.get(asset).status_code == 200


def test_other_paths_keep_their_json_answers_and_no_page_headers(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.json["code"] == 404
    assert "Content-Security-Policy" not in response.headers
    assert "Content-Security-Policy" not in client.get("/api/v1/jobs").headers


def test_jobs_started_from_the_page_show_live_progress_and_results(
    page, web, worker, app, console_errors
):
    with app.app_context():
        db.session.add_all([Product(name="Lamp", description="Bright"), Product(name="Desk")])
        db.session.commit()
    page.goto(web)
    expect(page.locator("#products")).to_contain_text("Lamp: Bright")

    with page.expect_response("**/api/v1/jobs/integrate") as integration:
        page.get_by_role("button", name="Start integration").click()
    row = job_row(page, job_id(integration.value))
    expect(row).to_have_attribute("data-state", "SUCCESS", timeout=JOB_TIMEOUT_MS)
    expect(row).to_contain_text(re.compile(r"estimate 3\.1\d*, samples 100000"))

    page.get_by_label("steps (1 to 100)").fill("10")
    with page.expect_response("**/async_process/start") as started:
        page.get_by_role("button", name="Start an async process").click()
    assert started.value.status == 202
    job = job_id(started.value)
    row = job_row(page, job)
    bar = row.get_by_role("progressbar", name=f"Progress of async_process {job[:8]}")
    bar_moved(page, job)
    page.screenshot(path=ARTIFACTS / "dashboard.png", full_page=True)
    expect(row).to_have_attribute("data-state", "SUCCESS", timeout=JOB_TIMEOUT_MS)
    expect(bar).to_have_js_property("value", 10)
    expect(bar).to_have_js_property("max", 10)
    expect(row.locator("td.progress")).to_have_text("100 %")
    expect(row).to_contain_text("steps 10")
    assert console_errors == []
    # The README's screenshot, refreshed on request so that a test run leaves the tree clean.
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(ARTIFACTS / "dashboard.png", SCREENSHOT)


def test_an_invalid_expression_is_explained_beside_its_field(page, web, console_errors):
    page.goto(web)
    expression = page.get_by_label("f(x), an expression in x")
    expression.fill("open('x')")
    # From the last field, the keyboard reaches the button and presses it.
    page.get_by_label("seed (optional)").press("Tab")
    expect(page.get_by_role("button", name="Start integration")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#f-error")).to_have_text(f"Calls to 'open' are not allowed. {ALLOWED}")
    expect(expression).to_have_attribute("aria-invalid", "true")
    expect(expression).to_have_attribute("aria-describedby", "f-error")
    expect(page.locator("#integrate-message")).to_have_text("The request body is not valid.")
    assert unexpected(console_errors) == []


def test_with_the_broker_down_the_start_buttons_show_the_503_message(
    page, environment, console_errors
):
    unavailable = "The job queue is unavailable; try again shortly."
    with refusing_port() as port:
        with gunicorn({**environment, "REDIS_URL": f"redis://127.0.0.1:{port}/0"}) as url:
            page.goto(url)
            page.get_by_role("button", name="Start an async process").click()
            expect(page.locator("#async-message")).to_have_text(unavailable)
            page.get_by_role("button", name="Start integration").click()
            expect(page.locator("#integrate-message")).to_have_text(unavailable)
            expect(page.locator("#jobs-message")).to_have_text("No jobs yet: start one above.")
    assert unexpected(console_errors) == []


def test_without_a_worker_a_started_job_waits_for_one(page, web, console_errors):
    page.goto(web)
    with page.expect_response("**/async_process/start") as started:
        page.get_by_role("button", name="Start an async process").click()
    row = job_row(page, job_id(started.value))
    bar = row.get_by_role("progressbar")
    expect(row.locator("td.state")).to_contain_text("PENDING")
    expect(row.locator("td.state")).to_contain_text("Waiting for a worker", timeout=JOB_TIMEOUT_MS)
    expect(row).to_have_attribute("data-state", "PENDING")
    # No value: the bar is indeterminate, since nothing has run yet.
    expect(bar).to_have_js_property("position", -1)
    assert unexpected(console_errors) == []
