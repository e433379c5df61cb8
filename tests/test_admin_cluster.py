"""Issue 16: the cluster page in the Django admin, in a real browser (headless Chromium).

One gunicorn instance of tests/http_app with the admin (``MSM_ADMIN=1``) on three memcached nodes.
Anonymous and non-staff users are sent to the admin's login page; staff see both nodes, the
session copies per node, the statistics, and the page follows a node's failure without a reload.
A screenshot lands in .cache/browser-test/admin-cluster.png; with ``UPDATE_SCREENSHOTS=1`` also
in docs/admin-cluster.png (the README shows it).

The page's figures come from ``ops.cluster_page``; its exact numbers are tested without a browser
at the end, on the hand-built status of test_msm_status.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

from django_msm.ops.cluster_page import node_rows, page, statistics, summary
from tests.appservers import AppServer, Browser
from tests.http_app.views import PASSWORD, STAFF_PASSWORD, STAFF_USERNAME, USERNAME
from tests.test_browser import ARTIFACTS, PAGE_TIMEOUT, browser  # noqa: F401  (the fixture)
from tests.test_msm_status import fixture_status

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = ROOT / "docs" / "admin-cluster.png"
SESSIONS = 24
PAGE = "/admin/msm-cluster/"


def base(server: AppServer) -> str:
    return f"http://127.0.0.1:{server.port}"


def text(driver: WebDriver, css: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, css).text.strip()


def admin_login(driver: WebDriver, server: AppServer, username: str, password: str) -> None:
    driver.get(f"{base(server)}/admin/login/?next={PAGE}")
    driver.find_element(By.ID, "id_username").send_keys(username)
    driver.find_element(By.ID, "id_password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(driver, PAGE_TIMEOUT).until(lambda d: "/admin/login/" not in d.current_url)


def refused(driver: WebDriver, server: AppServer) -> bool:
    """The cluster page sent the browser to the admin's login form, showing none of itself."""
    driver.get(base(server) + PAGE)
    on_login = driver.current_url.startswith(f"{base(server)}/admin/login/?next=")
    return on_login and not driver.find_elements(By.ID, "msm-cluster")


@pytest.fixture
def admin_app(memcached_nodes, fleet):
    nodes = memcached_nodes(3)
    # Generous timeouts: on a busy machine a 0.1 s backup write can time out, which rightly
    # shows as "quarantined" and a doubled backup copy; this test wants exact figures.
    server = fleet.start("admin1", nodes, MSM_ADMIN="1", MSM_PUBLISH="1",
                         MSM_OPERATION_TIMEOUT="3", MSM_BACKUP_TIMEOUT="3")
    for _ in range(SESSIONS):  # each a new visitor: a session with its backup copy
        assert Browser().get(server, "/count/").status == 200
    return server, nodes


@pytest.mark.integration
def test_anonymous_and_non_staff_users_are_refused(admin_app, browser):  # noqa: F811
    server, _ = admin_app
    assert refused(browser, server)
    status, headers = _plain_get(server, PAGE + "?format=json", Browser())
    assert status == 302 and headers.startswith("/admin/login/?next=")
    user = Browser()
    assert user.post(server, "/login/", {"username": USERNAME, "password": PASSWORD}).status == 200
    status, headers = _plain_get(server, PAGE + "?part=body", user)
    assert status == 302 and headers.startswith("/admin/login/?next=")
    browser.get(base(server) + "/health/")
    browser.add_cookie({"name": "sessionid", "value": user.cookie})
    assert refused(browser, server)
    assert "You are authenticated as alice, but are not authorized" in text(browser, "#content")


def _plain_get(server: AppServer, path: str, user: Browser) -> tuple[int, str]:
    from tests.appservers import request

    headers = {"Cookie": f"sessionid={user.cookie}"} if user.cookie else {}
    status, response_headers, _ = request("GET", server.port, path, headers)
    return status, response_headers.get("Location", "")


@pytest.mark.integration
def test_staff_see_the_cluster_and_the_page_follows_a_node_failure(admin_app, browser):  # noqa: F811
    server, nodes = admin_app
    admin_login(browser, server, STAFF_USERNAME, STAFF_PASSWORD)
    try:
        assert browser.current_url == base(server) + PAGE
        assert text(browser, "#content h1") == "Session cluster"
        for node in ("n1", "n2", "n3"):
            assert text(browser, f"#msm-node-{node} .msm-probe") == "up"
            assert text(browser, f"#msm-node-{node} .msm-view") == "up"  # this worker wrote to it
            assert browser.find_elements(By.CSS_SELECTOR, f"#msm-bar-{node} .msm-seg")
        figures = dict(zip(
            [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".msm-figure .msm-label")],
            [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".msm-figure .msm-value")],
            strict=True,
        ))
        # The visitors' sessions and the staff user's own.
        assert figures["Sessions"] == str(SESSIONS + 1) and figures["Backup coverage"] == "100.0%"
        assert figures["Nodes answering"] == "3 of 3"
        # The worker publishes its figures at most every 5 s; the page shows them as they come.
        WebDriverWait(browser, 30).until(lambda d: "creates" in text(d, "#msm-counters"))

        browser.execute_script("window.msmSamePage = true;")
        nodes[2].kill()  # n2's backup copies were on n3: n2's sessions are left with one copy
        for _ in range(6):  # new sessions get their backup on the next live node
            Browser().get(server, "/count/")
        WebDriverWait(browser, 30).until(
            lambda d: text(d, "#msm-node-n3 .msm-probe") == "down"
            and d.find_elements(By.CSS_SELECTOR, "#msm-bar-n2 .msm-seg.single")
        )
        assert browser.execute_script("return window.msmSamePage === true;")  # no reload
        assert "node n3 (127.0.0.1:" in text(browser, "#msm-warnings")
        assert text(browser, "#msm-bar-n3").startswith("down: its sessions are served")
        _screenshot(browser)
        browser.get(base(server) + "/admin/")
        link = browser.find_element(By.LINK_TEXT, "Session cluster")
        assert link.get_attribute("href") == base(server) + PAGE
    except BaseException:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "admin-cluster-failed.png"))
        (ARTIFACTS / "admin-cluster-failed.html").write_text(browser.page_source)
        raise


def _screenshot(driver: WebDriver) -> None:
    """The page as the README shows it: side bar folded, the whole page body in view."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "admin-cluster.png"
    driver.find_element(By.ID, "toggle-nav-sidebar").click()
    driver.set_window_size(1100, 1250)
    driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank one
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(shot, SCREENSHOT)


# -- the page's figures, exactly (no browser) -----------------------------------------------------
def test_bars_split_each_nodes_copies_and_scale_to_the_fullest_node():
    rows = node_rows(fixture_status())
    bars = {row.label: [(s.kind, s.count, round(s.width, 2)) for s in row.segments] for row in rows}
    # n1 holds 20 primaries (5 without backup: b(n1) = 15) and 2 backups; n3 2 + 33: the longest.
    assert bars == {
        "n1": [("primary", 15, 42.86), ("single", 5, 14.29), ("backup", 2, 5.71)],
        "n2": [],
        "n3": [("primary", 2, 5.71), ("backup", 33, 94.29)],
    }
    assert rows[1].note == "down: its sessions are served from their backup copies on other nodes"
    assert [(r.probe, r.memory, r.memory_share) for r in rows] == [
        ("up", "1.5 MiB of 64.0 MiB", 2.3), ("down", "-", None),
        ("up", "60.0 MiB of 64.0 MiB", 93.8),
    ]


def test_summary_and_statistics_read_as_msm_status_says_them():
    status = fixture_status()
    assert summary(status) == [
        ("Nodes answering", "2 of 3"), ("Sessions", "40 or more"), ("Primary copies", "22"),
        ("Backup copies", "35"), ("Backup coverage", "77.3%"), ("Single-copy sessions", "5"),
    ]
    figures = statistics(status)
    assert figures["heading"] == "2 instances"
    assert figures["instances"] == [("web1:101", "1.5 s ago"), ("web2:202", "1.0 s ago")]
    assert figures["counters"] == [
        ("creates", 8, [3, 5]), ("loads_primary", 10, [10, 0]), ("saves", 1, [0, 1]),
    ]
    assert figures["timings"] == [
        ("load", 3, ["1 ms", "5 ms", "5 ms"]), ("serialized_size", 2, ["200 B", "200 B", "200 B"]),
    ]
    assert page(status)["warnings"] == status.warnings
