"""Issue 15 for sites, on real memcached nodes: the sessions page, ``msm_sessions``, the admin's
"Log out everywhere" and END_SESSIONS_ON_PASSWORD_CHANGE. The page in a real browser is
tests/test_browser_user_sessions.py."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from io import StringIO

import pytest
from django.contrib.admin import AdminSite, ModelAdmin
from django.contrib.auth.models import User
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.management import CommandError, call_command
from django.test import Client, RequestFactory

from django_msm import user_sessions
from django_msm.admin import add_user_action, log_out_everywhere
from django_msm.clock import FakeClock
from django_msm.runtime import build_cluster, get_config, install_cluster
from tests.servers import MemcachedProcess
from tests.test_user_sessions import PASSWORD, Device
from tests.user_sessions_app import app_settings
from tests.visitors import msm_settings

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def alice() -> User:
    return User.objects.create_user("alice", password=PASSWORD)


@pytest.fixture
def site(memcached_nodes: Callable[..., list[MemcachedProcess]]) -> Iterator[None]:
    with msm_settings(memcached_nodes(2), USER_SESSIONS_RECORD_IP=True), app_settings():
        yield


def rows(html: str) -> dict[str, bool]:
    """The sessions page's rows: handle -> marked "this device"."""
    found = re.findall(r'<tr id="session-([0-9a-f]+)" class="msm-session( this-device)?">', html)
    return {handle: bool(mark) for handle, mark in found}


# -- the page ----------------------------------------------------------------------------------
def test_the_page_lists_marks_this_device_and_ends_others(site: None, alice: User) -> None:
    laptop, phone, tablet = Device("10.0.0.1", "Laptop"), Device("10.0.0.2", "Phone"), Device(
        "10.0.0.3", "Tablet")
    for device in (laptop, phone, tablet):
        device.log_in("alice")
    page = laptop.client.get("/account/sessions/")
    assert page.status_code == 200
    html = page.content.decode()
    handle = {d.agent: user_sessions.session_handle(d.key) for d in (laptop, phone, tablet)}
    assert rows(html) == {handle["Laptop"]: True, handle["Phone"]: False, handle["Tablet"]: False}
    assert "10.0.0.2" in html and "Tablet" in html
    assert not any(d.key in html for d in (laptop, phone, tablet))  # keys never reach the page

    reply = laptop.client.post("/account/sessions/end/", {"session": handle["Phone"]})
    assert (reply.status_code, reply["Location"]) == (302, "/account/sessions/")
    assert [d.who() for d in (laptop, phone, tablet)] == ["alice", None, "alice"]
    laptop.client.post("/account/sessions/end/", {"session": handle["Laptop"]})  # refused
    assert laptop.who() == "alice"

    laptop.client.post("/account/sessions/end-others/")
    assert [d.who() for d in (laptop, tablet)] == ["alice", None]
    assert rows(laptop.client.get("/account/sessions/").content.decode()) == {
        handle["Laptop"]: True}


def test_the_page_needs_a_login_and_its_forms_a_csrf_token(site: None, alice: User) -> None:
    assert Client().get("/account/sessions/")["Location"].startswith("/login/")
    assert Client().post("/account/sessions/end-others/")["Location"].startswith("/login/")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    other = Device("10.0.0.2", "Phone")
    other.log_in("alice")
    assert strict.post("/account/sessions/end-others/").status_code == 403
    assert other.who() == "alice"
    assert strict.get("/account/sessions/end-others/").status_code == 405


# -- manage.py msm_sessions ----------------------------------------------------------------------
def test_msm_sessions_lists_and_ends_every_session(site: None, alice: User) -> None:
    install_cluster(build_cluster(get_config(), FakeClock()))  # fixed times in the listing
    laptop, phone = Device("10.0.0.1", "Laptop"), Device("10.0.0.2", "Phone")
    keys = [laptop.log_in("alice"), phone.log_in("alice")]
    out = StringIO()
    call_command("msm_sessions", "alice", stdout=out)
    shown = {key: f"{key[:6]}...-{key.rsplit('-', 1)[1]}" for key in keys}
    header = "SESSION       CREATED              LAST SEEN            IP        USER AGENT"
    lines = out.getvalue().splitlines()
    assert lines[0] == header
    assert sorted(lines[1:]) == sorted(
        f"{shown[key]}  2023-11-14 22:13:20  2023-11-14 22:13:20  {ip}  {agent}"
        for key, ip, agent in ((keys[0], "10.0.0.1", "Laptop"), (keys[1], "10.0.0.2", "Phone"))
    )
    assert not any(key in out.getvalue() for key in keys)

    out = StringIO()
    call_command("msm_sessions", "alice", "--json", stdout=out)
    listing = json.loads(out.getvalue())
    assert sorted(row["session"] for row in listing["sessions"]) == sorted(shown.values())
    assert {row["user_agent"] for row in listing["sessions"]} == {"Laptop", "Phone"}

    out = StringIO()
    call_command("msm_sessions", "alice", "--end-all", "--json", stdout=out)
    assert json.loads(out.getvalue()) == {"user": "alice", "ended": 2, "remaining": 0}
    assert [laptop.who(), phone.who()] == [None, None]
    out = StringIO()
    call_command("msm_sessions", "alice", stdout=out)
    assert out.getvalue() == "alice has no sessions.\n"
    with pytest.raises(CommandError, match="no user 'nobody'"):
        call_command("msm_sessions", "nobody")


# -- the admin action ----------------------------------------------------------------------------
class SiteUserAdmin(ModelAdmin):
    """A site's own user admin with an action of its own (the admin app is not installed here,
    so Django's UserAdmin cannot be imported)."""

    actions = ["mark_reviewed"]

    @staticmethod
    def mark_reviewed(modeladmin: object, request: object, queryset: object) -> None:
        """An action the site had before; it must stay."""


def test_log_out_everywhere_is_added_to_the_user_admin_and_ends_everything(
    site: None, alice: User,
) -> None:
    admin_site = AdminSite()
    assert add_user_action(admin_site) is False  # nothing registered yet
    admin_site.register(User, SiteUserAdmin)
    assert add_user_action(admin_site) is True and add_user_action(admin_site) is True
    model_admin = admin_site._registry[User]
    assert list(model_admin.actions) == ["mark_reviewed", log_out_everywhere]
    devices = [Device(f"10.0.0.{i}", "Phone") for i in range(3)]
    for device in devices:
        device.log_in("alice")
    request = RequestFactory().post("/admin/auth/user/")
    request._messages = CookieStorage(request)
    log_out_everywhere(model_admin, request, User.objects.filter(pk=alice.pk))
    assert [d.who() for d in devices] == [None, None, None]
    assert [m.message for m in request._messages._queued_messages] == ["Ended 3 sessions."]


# -- END_SESSIONS_ON_PASSWORD_CHANGE --------------------------------------------------------------
@pytest.mark.parametrize("switch", [True, False])
def test_a_password_change_ends_the_other_sessions_when_asked(
    memcached_nodes: Callable[..., list[MemcachedProcess]], alice: User, switch: bool,
) -> None:
    with msm_settings(memcached_nodes(2), END_SESSIONS_ON_PASSWORD_CHANGE=switch), \
            app_settings():
        here, there = Device("10.0.0.1", "Laptop"), Device("10.0.0.2", "Phone")
        here.log_in("alice")
        there.log_in("alice")
        reply = here.client.post("/password/", {"password": "a new one entirely"})
        assert reply.json()["user"] == "alice"
        assert here.who() == "alice"  # update_session_auth_hash kept this device signed in
        listed = {session.session_key for session in user_sessions.list_for(alice)}
        # Ended at once on the nodes; without the setting, Django's session hash check logs
        # the other device out only when it next shows up.
        assert listed == ({here.key} if switch else {here.key, there.key})
        assert there.who() is None
        alice.refresh_from_db()
        alice.last_name = "Liddell"
        alice.save()  # no new password: nothing ended
        assert here.who() == "alice"

