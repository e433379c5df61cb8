"""Issue 15's page in a real browser: headless Chromium through nginx to two gunicorn instances
of testproject (demo/cluster.py, django_msm's middleware), the same set-up as test_browser.py.

The demo user signs in from the browser and from two other devices (HTTP clients with their own
user agents). The browser's sessions page lists all three with this device marked, ends one
other device, then signs out of all other devices; each step is checked from the devices' side.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from demo.client import ShopClient
from demo.cluster import Cluster
from tests.test_browser import ShopPage, browser, evidence_on_failure  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with Cluster(env={"MSM_DEMO_MIDDLEWARE": "msm"}) as running:
        yield running


class Device(ShopClient):
    """Another device of the demo user: its own cookie jar and user agent."""

    def __init__(self, base_url: str, agent: str):
        super().__init__(base_url)
        self.opener.addheaders = [("User-Agent", agent)]

    def user(self) -> str | None:
        return self.status()["user"]


class SessionsPage(ShopPage):
    """The sessions page of django_msm.urls as the browser shows it."""

    def open_sessions(self) -> None:
        self.driver.get(self.cluster.url + "/account/sessions/")

    def rows(self) -> dict[str, bool]:
        """Device (user agent cell) -> marked "this device", for every listed session."""
        rows = self.driver.find_elements(By.CSS_SELECTOR, "tr.msm-session")
        return {
            row.find_element(By.TAG_NAME, "td").text.strip():
                "this-device" in (row.get_attribute("class") or "")
            for row in rows
        }

    def end(self, agent: str) -> None:
        row = next(row for row in self.driver.find_elements(By.CSS_SELECTOR, "tr.msm-session")
                   if row.find_element(By.TAG_NAME, "td").text.strip() == agent)
        button = row.find_element(By.TAG_NAME, "button")
        self.click(button.get_attribute("id") or "")


def test_sessions_page_lists_devices_ends_one_and_all_others(
    cluster: Cluster, browser: WebDriver  # noqa: F811 (the fixture imported above)
) -> None:
    page = SessionsPage(browser, cluster)
    others = [Device(cluster.url, agent) for agent in ("Device B", "Device C")]
    with evidence_on_failure(page, "sessions-1-login"):
        for device in others:
            device.log_in("demo", "demo")
            assert device.user() == "demo"
        page.open()
        page.click("login-link")
        page.fill("id_username", "demo")
        page.fill("id_password", "demo")
        page.click("login-submit")
        assert page.text("user") == "demo"
        own = browser.execute_script("return navigator.userAgent")

    with evidence_on_failure(page, "sessions-2-list"):
        page.open_sessions()
        assert page.rows() == {own: True, "Device B": False, "Device C": False}

    with evidence_on_failure(page, "sessions-3-end-one"):
        page.end("Device B")
        assert page.rows() == {own: True, "Device C": False}
        assert [device.user() for device in others] == [None, "demo"]

    with evidence_on_failure(page, "sessions-4-end-others"):
        page.click("end-others")
        assert page.rows() == {own: True}
        assert [device.user() for device in others] == [None, None]
        page.open()
        assert page.text("user") == "demo"  # this device is still signed in
