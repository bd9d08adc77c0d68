"""Who may use the review page: loopback only, or anyone holding the token; and headers that keep the page inert.

Bound to a loopback address (the default) the page needs no token, but it answers
only requests whose Host names a loopback address, so a web page that rebinds its
own domain name to 127.0.0.1 cannot read or rate through it. Bound to any other
address it needs a token (`autodidact review --token`): the person opens
``/?token=TOKEN`` once, the page moves the token into an HttpOnly, SameSite=Strict
cookie and drops it from the address bar; scripts send ``Authorization: Bearer TOKEN``.
Every response forbids scripts, framing and content sniffing, so even markup that
escaped the template could not run. Standard library only: the CLI checks a
host and token without loading FastAPI.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from autodidact.errors import AutodidactError

TOKEN_ENV = "AUTODIDACT_REVIEW_TOKEN"
TOKEN_COOKIE = "autodidact_review_token"
MIN_TOKEN_LENGTH = 16
MAX_BODY_BYTES = 64 * 1024  # a rating form is a few dozen bytes
_TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~+/=-]+")  # URL-, header- and cookie-safe; secrets.token_urlsafe fits

# No script at all, nothing from elsewhere, no framing; inline styles are the page's own <style>.
SECURITY_HEADERS = (
    (b"content-security-policy", b"default-src 'self'; script-src 'none'; style-src 'unsafe-inline'; "
                                 b"img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),  # no-referrer would make the form post Origin: null
    (b"cache-control", b"no-store"),
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def is_loopback(host: str) -> bool:
    """True for 'localhost' and loopback IP addresses (127.0.0.0/8, ::1), with or without [brackets]."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_serving(host: str, token: str | None) -> None:
    """AutodidactError unless serving on `host` with `token` (None: no token) is safe.

    Any address other than loopback needs a token of at least MIN_TOKEN_LENGTH URL-safe characters.
    """
    make = "python -c 'import secrets; print(secrets.token_urlsafe())'"
    if token is None:
        if not is_loopback(host):
            raise AutodidactError(
                f"--host {host} lets other machines reach the review page, so it needs a token: pass --token TOKEN "
                f"(or set {TOKEN_ENV}), e.g. one made by `{make}`, and open http://{host}:PORT/?token=TOKEN once. "
                "Or keep the default --host 127.0.0.1."
            )
        return
    if len(token) < MIN_TOKEN_LENGTH or not _TOKEN_PATTERN.fullmatch(token):
        raise AutodidactError(
            f"the review token must be at least {MIN_TOKEN_LENGTH} characters from A-Z a-z 0-9 . _ ~ + / = -; "
            f"make one with `{make}`."
        )


def _host_name(host_header: str) -> str:
    """The name in a Host header without its port: 'localhost:8765' -> 'localhost', '[::1]:8765' -> '::1'."""
    if host_header.startswith("["):
        return host_header[1:].partition("]")[0]
    return host_header.rpartition(":")[0] if ":" in host_header else host_header


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


async def _respond(send: Send, status: int, text: str, headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
        *headers, *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})


class ReviewGuard:
    """ASGI middleware: the access rules of the module docstring and SECURITY_HEADERS on every response.

    Args:
        app: The review app.
        token: The token every request must carry, or None for a loopback-only page.
    """

    def __init__(self, app: ASGIApp, token: str | None = None) -> None:
        self.app = app
        self._token = None if token is None else token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        length = headers.get("content-length", "0")
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:  # uvicorn already refuses a malformed length
            await _respond(send, 413, f"a request body may hold at most {MAX_BODY_BYTES} bytes")
            return
        if self._token is None:
            if not is_loopback(_host_name(headers.get("host", ""))):
                # A rebound domain name still carries its own name in Host; a loopback page answers only to loopback.
                await _respond(send, 421, "this review page answers only at a loopback address such as "
                                          "http://127.0.0.1:PORT/; to serve it to other machines use --token")
                return
        elif not await self._authorized(scope, headers, send):
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _authorized(self, scope: Scope, headers: dict[str, str], send: Send) -> bool:
        """Whether the request carries the token; if not, or if it came in the query of a GET, answer it here."""
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        in_query = next((v for k, v in query if k == "token"), None)
        scheme, _, bearer = headers.get("authorization", "").partition(" ")
        presented = (in_query if in_query is not None
                     else bearer.strip() if scheme.lower() == "bearer"
                     else _cookie(headers.get("cookie", ""), TOKEN_COOKIE))
        if presented is None:
            await _respond(send, 401, "this review page needs its token: open /?token=TOKEN once "
                                      "(the token given to `autodidact review --token`)",
                           ((b"www-authenticate", b"Bearer"),))
            return False
        if not secrets.compare_digest(presented.encode(), self._token):
            await _respond(send, 403, "wrong review token: open /?token=TOKEN with the token given to "
                                      "`autodidact review --token`")
            return False
        if in_query is not None and scope["method"] in ("GET", "HEAD"):
            # Keep the token out of the address bar and history: set the cookie and reload without it.
            # One leading slash and a quoted path, so the redirect cannot leave this site ('//host', '/\host').
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            location = "/" + quote(scope["path"].lstrip("/\\"), safe="/") + (f"?{rest}" if rest else "")
            cookie = b"%s=%s; Path=/; HttpOnly; SameSite=Strict" % (TOKEN_COOKIE.encode(), self._token)
            await _respond(send, 303, "token accepted", ((b"location", location.encode()), (b"set-cookie", cookie)))
            return False
        return True
