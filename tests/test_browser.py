"""End to end in a real browser: Debian's headless Chromium, driven by Selenium and chromedriver,
through nginx to two gunicorn instances of testproject on two memcached nodes (demo/cluster.py).

A user logs in and fills a cart; the memcached node holding the session is killed, then the app
instance that served the page: after each, a reload must show the same user and the same cart.
On failure a screenshot, the page source and the cluster's logs land in .cache/browser-test/.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

from demo.cluster import Cluster
from tests.keyleaks import detector

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-proxy-server", "--disable-dev-shm-usage", "--window-size=1000,900",
)
ARTIFACTS = Path(__file__).resolve().parent.parent / ".cache" / "browser-test"
PAGE_TIMEOUT = 30


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with Cluster() as running:
        yield running
        for log in sorted(running.workdir.glob("*.log")):  # the app instances' logs too
            detector.scan_file(log, f"demo {log.name}")


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not Path(binary).exists():
            pytest.fail(f"{binary} is missing: `make test` installs chromium and chromium-driver")
    with tempfile.TemporaryDirectory(prefix="msm-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        try:
            driver.set_page_load_timeout(PAGE_TIMEOUT)
            yield driver
        finally:
            driver.quit()


def _gone(element: WebElement) -> bool:
    """True once the element's page was replaced. Besides selenium's stale-element error,
    chromedriver may answer "Node with given id does not belong to the document" while the
    new page replaces the old one (seen in CI); that means gone as well."""
    try:
        element.is_enabled()
    except (StaleElementReferenceException, WebDriverException):
        return True
    return False


class ShopPage:
    """The demo shop as the browser shows it."""

    def __init__(self, driver: WebDriver, cluster: Cluster):
        self.driver = driver
        self.cluster = cluster

    def text(self, element_id: str) -> str:
        return self.driver.find_element(By.ID, element_id).text.strip()

    def click(self, element_id: str) -> None:
        """Click a link or button and wait for the page it leads to."""
        old_page = self.driver.find_element(By.TAG_NAME, "html")
        self.driver.find_element(By.ID, element_id).click()
        WebDriverWait(self.driver, PAGE_TIMEOUT).until(lambda _: _gone(old_page))
        WebDriverWait(self.driver, PAGE_TIMEOUT).until(
            lambda driver: driver.execute_script("return document.readyState") == "complete"
        )

    def fill(self, element_id: str, value: str) -> None:
        self.driver.find_element(By.ID, element_id).send_keys(value)

    def open(self) -> None:
        self.driver.get(self.cluster.url + "/")

    def reload(self) -> None:
        self.driver.refresh()

    def state(self) -> dict[str, str]:
        ids = ("instance", "user", "session-key", "primary", "backup", "cart", "visits")
        return {element_id: self.text(element_id) for element_id in ids}


@contextmanager
def evidence_on_failure(page: ShopPage, name: str) -> Iterator[None]:
    """Keep a screenshot, the page and the cluster's logs of a failing step."""
    try:
        yield
    except BaseException:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))
        (ARTIFACTS / f"{name}.html").write_text(page.driver.page_source)
        logs = ARTIFACTS / f"{name}-logs"
        shutil.rmtree(logs, ignore_errors=True)
        shutil.copytree(page.cluster.workdir, logs, ignore=shutil.ignore_patterns("*.sqlite3"))
        raise


def _log_in_and_fill_cart(page: ShopPage) -> dict[str, str]:
    page.open()
    assert page.text("user") == "anonymous"
    page.click("login-link")
    page.fill("id_username", "demo")
    page.fill("id_password", "demo")
    page.click("login-submit")
    assert page.text("user") == "demo"
    page.click("add-apple")
    page.click("add-pear")
    state = page.state()
    assert state["cart"] == "apple, pear"
    return state


def test_session_survives_memcached_node_and_app_instance_failures(
    cluster: Cluster, browser: WebDriver
) -> None:
    page = ShopPage(browser, cluster)
    with evidence_on_failure(page, "1-login"):
        before = _log_in_and_fill_cart(page)

    with evidence_on_failure(page, "2-memcached-node-killed"):
        (survivor,) = set(cluster.nodes) - {before["primary"]}
        cluster.kill_node(before["primary"])
        page.reload()
        after = page.state()
        assert (after["user"], after["cart"]) == ("demo", "apple, pear"), after
        assert after["session-key"] != before["session-key"], after
        assert after["primary"] == survivor, after
        page.reload()
        assert page.state()["session-key"] == after["session-key"]

    with evidence_on_failure(page, "3-app-instance-killed"):
        victim = page.text("instance")
        cluster.kill_app(victim)
        for _ in range(3):
            page.reload()
            state = page.state()
            assert state["instance"] != victim, state
            assert (state["user"], state["cart"]) == ("demo", "apple, pear"), state
        page.click("add-plum")
        assert page.text("cart") == "apple, pear, plum"
