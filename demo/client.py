"""A tiny browser for the tour: one cookie jar, no proxy, bounded timeouts, Django's CSRF form."""

from __future__ import annotations

import http.cookiejar
import json
import re
import urllib.parse
import urllib.request
from typing import Any

TIMEOUT = 15.0
_CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class ShopClient:
    """Talks to the demo shop through the load balancer as one user with one cookie jar."""

    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(self.jar)
        )

    def _open(self, path: str, form: dict[str, str] | None = None) -> str:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        with self.opener.open(self.base_url + path, data=data, timeout=TIMEOUT) as response:
            return response.read().decode()

    def _csrf_post(self, form_path: str, post_path: str, form: dict[str, str]) -> str:
        match = _CSRF_FIELD.search(self._open(form_path))
        if match is None:
            raise RuntimeError(f"no CSRF token in the form at {form_path}")
        return self._open(post_path, {**form, "csrfmiddlewaretoken": match.group(1)})

    def status(self) -> dict[str, Any]:
        """One page view (it counts a visit), as the JSON report the page renders."""
        return json.loads(self._open("/status.json"))

    def log_in(self, username: str, password: str) -> None:
        self._csrf_post("/login/", "/login/", {"username": username, "password": password})

    def add_to_cart(self, item: str) -> None:
        self._csrf_post("/", "/cart/add/", {"item": item})
