"""A minimal asyncio HTTP/1.0 client for the load generator: one connection per request.

The standard library has no asyncio HTTP client and hundreds of simulated users do not fit in
threads on a 2-core machine. HTTP/1.0 keeps it small: the server closes the connection after the
response, so the body is everything up to EOF (no chunked encoding, no keep-alive). Only the
session cookie is tracked; ``Reply.cookie`` tells a new value from a deletion.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.parse
from dataclasses import dataclass
from typing import Any

COOKIE = "sessionid"
NO_ANSWER = 0  # status of a request that got no HTTP answer (refused, reset, timed out)


@dataclass(frozen=True)
class Reply:
    status: int
    cookie: str | None = None  # None: no Set-Cookie for the session; "": the cookie is deleted
    body: dict[str, Any] | None = None
    error: str = ""


def render(
    method: str, host: str, path: str, cookie: str | None, form: dict[str, str] | None
) -> bytes:
    """The request bytes."""
    lines = [f"{method} {path} HTTP/1.0", f"Host: {host}", "Connection: close"]
    if cookie:
        lines.append(f"Cookie: {COOKIE}={cookie}")
    body = b""
    if form is not None:
        body = urllib.parse.urlencode(form).encode()
        lines += ["Content-Type: application/x-www-form-urlencoded",
                  f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def session_cookie(header_value: str) -> str | None:
    """The session cookie's value in one ``Set-Cookie`` value ("" if deleted), else None."""
    name, _, rest = header_value.partition("=")
    if name.strip() != COOKIE:
        return None
    return rest.split(";", 1)[0].strip().strip('"')


def parse(data: bytes) -> Reply:
    """Turn a whole HTTP response into a Reply (a JSON body is decoded when it is one)."""
    head, _, payload = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        return Reply(NO_ANSWER, error=f"malformed status line {lines[0][:60]!r}")
    cookie = None
    json_body = False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "set-cookie":
            found = session_cookie(value.strip())
            cookie = found if found is not None else cookie
        elif name == "content-type":
            json_body = "json" in value
    body = None
    if json_body:
        try:
            body = json.loads(payload)
        except ValueError:
            body = None
    return Reply(int(parts[1]), cookie, body)


async def fetch(
    url: str, method: str, path: str, cookie: str | None = None,
    form: dict[str, str] | None = None, timeout: float = 10.0,
) -> Reply:
    """Send one request to ``url`` (``http://127.0.0.1:port``) and read the whole reply."""
    host = url.removeprefix("http://").rstrip("/")
    address, _, port = host.rpartition(":")

    async def exchange() -> bytes:
        reader, writer = await asyncio.open_connection(address, int(port))
        try:
            writer.write(render(method, host, path, cookie, form))
            await writer.drain()
            return await reader.read()
        finally:
            writer.close()
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    try:
        data = await asyncio.wait_for(exchange(), timeout)
    except (TimeoutError, OSError) as exc:
        return Reply(NO_ANSWER, error=type(exc).__name__)
    if not data:
        return Reply(NO_ANSWER, error="empty reply")
    return parse(data)
