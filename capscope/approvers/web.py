"""
The web approval console: `WebApprover`, an approval handler whose
pending requests a person answers on a web page, and `serve_in_background`
/ `serve` to run it on its own uvicorn server.

Needs the `console` extra (`pip install 'capscope[console]'`: starlette
and uvicorn).

Security, in short (see the consoles guide for the reasoning):

- never open: every page but the sign-in page and the static assets, and
  every API call, needs the token (`Authorization: Bearer <token>`) or a
  session made by signing in with it;
- a session is an `HttpOnly`, `SameSite=Strict` cookie, and every POST it
  authenticates must carry the session's CSRF token in `X-CSRF-Token`, a
  JSON body, and no foreign `Origin`;
- the `Host` header must name an allowed host (loopback names by default:
  no DNS rebinding), and the server binds 127.0.0.1 unless told otherwise;
- each request has an unguessable id and is answered at most once;
- a strict Content-Security-Policy (no inline script), no framing, and
  every value is put on the page as text.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
import ipaddress
import json
import secrets
import socket
import sys
import threading
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Iterable
from importlib import resources
from typing import Any, NamedTuple, Self
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import events
from ..audit import decision_record
from ..events import Action, Decision
from ._base import QueuedApprover
from ._queue import AlreadyAnswered, Answer, UnknownRequest, printable

__all__ = ["Served", "WebApprover", "serve", "serve_in_background"]

#: Loopback names the `Host` header may carry by default.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
#: The headers every response carries.
_SECURITY_HEADERS = [
    (
        b"content-security-policy",
        (
            b"default-src 'none'; script-src 'self'; style-src 'self'; "
            b"connect-src 'self'; img-src 'self'; form-action 'self'; "
            b"base-uri 'none'; frame-ancestors 'none'"
        ),
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
_STATIC = {
    "console.js": "application/javascript; charset=utf-8",
    "login.js": "application/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}
#: The largest POST body read (an answer, a sign-in).
_BODY_LIMIT = 4096
#: Sessions kept at once; signing in past this forgets the oldest.
_SESSIONS = 64
#: Seconds between keep-alive comments on an idle event stream.
_KEEPALIVE = 15.0


def _asset(name: str) -> str:
    return (
        resources.files(__package__)
        .joinpath("static", name)
        .read_text(encoding="utf-8")
    )


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _host_name(host_header: str) -> str:
    """The host of a `Host` header, without the port, lower-cased."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback(host: str) -> bool:
    """
    Whether *host* (a name or an address, IPv6 optionally in brackets)
    only reaches this machine.

    Examples:
        >>> from capscope.approvers.web import is_loopback
        >>> is_loopback("127.0.0.1"), is_loopback("[::1]"), is_loopback("localhost")
        (True, True, True)
        >>> is_loopback("0.0.0.0"), is_loopback("192.168.1.10")
        (False, False)
    """
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Guard:
    """
    The ASGI wrapper in front of every route: refuses a `Host` that is not
    allowed (DNS rebinding) and adds the security headers to every
    response.
    """

    def __init__(self, app: ASGIApp, allowed: frozenset[str] | None) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.allowed is not None:
            host = ""
            for key, value in scope.get("headers", ()):
                if key == b"host":
                    host = value.decode("latin-1")
                    break
            if _host_name(host) not in self.allowed:
                await _error(400, "this host name is not allowed")(
                    scope, receive, send
                )
                return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [
                    *message.get("headers", ()),
                    *_SECURITY_HEADERS,
                ]
            await send(message)

        await self.app(scope, receive, send_secured)


class WebApprover(QueuedApprover):
    """
    An approval handler answered on a web page: each request waits in a
    queue, listed live on the page (what is asked, for which run and
    worker) with buttons to allow it once, allow it for the rest of the
    worker's approval frame ("always for this worker":
    `ApprovalDecision.allow(remember="scope")`) or deny it. The page also
    shows a live feed of capscope's decisions, and filters both by run and
    worker.

    Install it as the handler of a `ToolApprovalPolicy`; serve `app` (a
    Starlette app) with `serve_in_background`, `serve`, or mounted in your
    own ASGI app. `start()` (or `with approver:`) subscribes the decision
    feed; `close()` ends it and denies every pending and later request.

    Args:
        timeout: seconds a request waits before it is denied (`None`: no
            limit). Give the approval policy a `timeout` at least as long
            (or `None`): when the policy gives up first, the request is
            withdrawn from the page and the call refused.
        max_pending: requests waiting at once; one more is denied at once.
        token: the bearer token (at least 32 characters); a fresh random
            one by default. Anyone holding it can answer.
        allowed_hosts: the host names the `Host` header may carry
            (loopback names by default); `["*"]` allows any, for a console
            behind a proxy that checks hosts itself.
        feed_size: how many decisions the feed keeps.

    Attributes:
        token: the bearer token; print it where the person who answers
            can read it, and nowhere else.
        app: the ASGI app.

    Examples:
        >>> from capscope.approvers import WebApprover
        >>> approver = WebApprover(timeout=30)
        >>> len(approver.token) >= 32, approver.pending()
        (True, [])
    """

    who = "the web console"

    def __init__(
        self,
        *,
        timeout: float | None = 120.0,
        max_pending: int = 100,
        token: str | None = None,
        allowed_hosts: Iterable[str] | None = None,
        feed_size: int = 200,
    ) -> None:
        super().__init__(timeout=timeout, max_pending=max_pending)
        if token is None:
            token = secrets.token_urlsafe(32)
        if not isinstance(token, str) or len(token) < 32:  # noqa: PLR2004
            msg = "token must be a str of at least 32 characters"
            raise ValueError(msg)
        self.token = token
        hosts = LOOPBACK_HOSTS if allowed_hosts is None else allowed_hosts
        names = frozenset(h.strip("[]").lower() for h in hosts)
        self._allowed_hosts = None if "*" in names else names
        # One cookie name per approver: consoles on other ports of the
        # same host share its cookie jar.
        self._cookie = f"capscope_console_{secrets.token_hex(4)}"
        self._sessions: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()
        self._feed: deque[dict[str, Any]] = deque(maxlen=feed_size)
        self._feed_seq = 0
        self._pokes: dict[int, Callable[[], None]] = {}
        self._unsubscribe: Callable[[], None] | None = None
        self.queue.watch(self._poke)
        self.app: ASGIApp = _Guard(self._starlette(), self._allowed_hosts)

    # -- lifetime ---------------------------------------------------------------

    def start(self) -> Self:
        """Subscribe the decision feed to capscope's events (idempotent)."""
        with self._lock:
            if self._unsubscribe is None and not self.queue.closed:
                self._unsubscribe = events.subscribe(self._on_decision)
        return self

    def close(self) -> None:
        """End the feed, deny every pending and later request, end streams."""
        with self._lock:
            unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()
        super().close()
        self._poke()

    def __enter__(self) -> Self:
        return self.start()

    def login_url(self, url: str) -> str:
        """
        *url* (where the console is served) with the token in its
        fragment: opening it signs in. The fragment never leaves the
        browser, so the token reaches no server log and no `Referer`.

        Examples:
            >>> from capscope.approvers import WebApprover
            >>> approver = WebApprover(token="t" * 32)
            >>> approver.login_url("http://127.0.0.1:8765/")
            'http://127.0.0.1:8765/#token=tttttttttttttttttttttttttttttttt'
        """
        return f"{url}#token={self.token}"

    # -- the decision feed -----------------------------------------------------

    def _on_decision(self, decision: Decision) -> None:
        if decision.action is Action.ALLOW and decision.gate is None:
            return  # plain allows would drown the rest
        record = _printable_record(decision_record(decision))
        with self._lock:
            self._feed_seq += 1
            record["seq"] = self._feed_seq
            self._feed.append(record)
        self._poke()

    def _feed_since(self, seq: int) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self._feed if r["seq"] > seq]

    def _poke(self) -> None:
        with self._lock:
            pokes = list(self._pokes.values())
        for poke in pokes:
            poke()

    # -- authentication -------------------------------------------------------

    def _bearer(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            value.strip().encode(), self.token.encode()
        )

    def _session(self, request: Request) -> str | None:
        """The CSRF token of the request's session, or `None`."""
        session = request.cookies.get(self._cookie)
        if not session:
            return None
        with self._lock:
            return self._sessions.get(session)

    def _authenticated(self, request: Request) -> str | None:
        """How the request is authenticated: "bearer", "session" or None."""
        if self._bearer(request):
            return "bearer"
        if self._session(request) is not None:
            return "session"
        return None

    @staticmethod
    def _same_origin(request: Request) -> bool:
        """No `Origin`, or exactly this server's; no cross-site fetch."""
        origin = request.headers.get("origin")
        if origin is not None:
            own = f"{request.url.scheme}://{request.headers.get('host', '')}"
            if origin.lower() != own.lower():
                return False
        site = request.headers.get("sec-fetch-site")
        return site in {None, "same-origin", "none"}

    def _post_refusal(self, request: Request) -> Response | None:
        """Why a state-changing request is refused, or `None`."""
        how = self._authenticated(request)
        if how is None:
            return _error(
                401, "sign in, or send Authorization: Bearer <token>"
            )
        if not self._same_origin(request):
            return _error(403, "cross-origin request refused")
        if how == "session":
            csrf = self._session(request) or ""
            sent = request.headers.get("x-csrf-token", "")
            if not csrf or not hmac.compare_digest(
                sent.encode(), csrf.encode()
            ):
                return _error(403, "missing or wrong X-CSRF-Token")
        return None

    def _cookie_path(self, request: Request) -> str:
        return str(request.scope.get("root_path") or "") or "/"

    # -- routes -------------------------------------------------------------------

    def _starlette(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/", self._index, methods=["GET"]),
                Route("/login", self._login, methods=["POST"]),
                Route("/logout", self._logout, methods=["POST"]),
                Route("/static/{name}", self._static, methods=["GET"]),
                Route("/api/pending", self._api_pending, methods=["GET"]),
                Route("/api/events", self._api_events, methods=["GET"]),
                Route(
                    "/api/requests/{request_id}",
                    self._api_answer,
                    methods=["POST"],
                ),
            ]
        )

    async def _index(self, request: Request) -> Response:
        csrf = self._session(request)
        if csrf is None:
            return _login_page("")
        page = _asset("console.html").replace("{csrf}", html.escape(csrf))
        return Response(page, media_type="text/html; charset=utf-8")

    async def _static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _STATIC:
            return _error(404, "not found")
        return Response(_asset(name), media_type=_STATIC[name])

    async def _login(self, request: Request) -> Response:
        if not self._same_origin(request):
            return _error(403, "cross-origin request refused")
        body = await _body(request)
        if body is None:
            return _error(413, "request body too large")
        fields = parse_qs(body.decode("utf-8", "replace"))
        token = (fields.get("token") or [""])[0]
        if not hmac.compare_digest(token.encode(), self.token.encode()):
            return _login_page("That is not the token.", status=401)
        session, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[session] = csrf
            while len(self._sessions) > _SESSIONS:
                self._sessions.popitem(last=False)
        response = RedirectResponse("./", status_code=303)
        response.set_cookie(
            self._cookie,
            session,
            path=self._cookie_path(request),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def _logout(self, request: Request) -> Response:
        refused = self._post_refusal(request)
        if refused is not None:
            return refused
        session = request.cookies.get(self._cookie, "")
        with self._lock:
            self._sessions.pop(session, None)
        response = RedirectResponse("./", status_code=303)
        response.delete_cookie(self._cookie, path=self._cookie_path(request))
        return response

    async def _api_pending(self, request: Request) -> Response:
        if self._authenticated(request) is None:
            return _error(
                401, "sign in, or send Authorization: Bearer <token>"
            )
        run = request.query_params.get("run")
        worker = request.query_params.get("worker")
        views = [
            view
            for view in (entry.view() for entry in self.queue.pending())
            if (run is None or view["run_id"] == run)
            and (worker is None or view["worker_id"] == worker)
        ]
        return JSONResponse(views)

    async def _api_answer(self, request: Request) -> Response:  # noqa: PLR0911 - one per refusal
        refused = self._post_refusal(request)
        if refused is not None:
            return refused
        if request.headers.get("content-type", "").split(";")[0].strip() != (
            "application/json"
        ):
            return _error(415, "send the answer as application/json")
        body = await _body(request)
        if body is None:
            return _error(413, "request body too large")
        try:
            data = json.loads(body)
            answer = Answer(data["answer"])
            reason = data.get("reason")
            if reason is not None and not isinstance(reason, str):
                raise TypeError  # noqa: TRY301 - one refusal path
        except (ValueError, KeyError, TypeError, AttributeError):
            return _error(
                422,
                'send {"answer": "once" | "always" | "deny", "reason": '
                "optional text}",
            )
        try:
            entry = self.answer(
                request.path_params["request_id"],
                answer,
                reason=None if reason is None else reason[:500],
            )
        except UnknownRequest:
            return _error(404, "no such approval request")
        except AlreadyAnswered as exc:
            return _error(409, f"this request was already {exc.state}")
        return JSONResponse(
            {
                "id": entry.id,
                "answer": answer.value,
                "tool": entry.view()["tool"],
            }
        )

    async def _api_events(self, request: Request) -> Response:
        if self._authenticated(request) is None:
            return _error(
                401, "sign in, or send Authorization: Bearer <token>"
            )
        return StreamingResponse(
            self._stream(),
            media_type="text/event-stream",
            headers={"x-accel-buffering": "no"},
        )

    async def _stream(self) -> AsyncIterator[str]:
        """The page's live view: the pending list, new decisions, closing."""
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()

        def poke() -> None:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(wake.set)

        key = id(poke)
        with self._lock:
            self._pokes[key] = poke
        try:
            sent_version = -1
            seen = 0
            while True:
                wake.clear()
                version = self.queue.version
                if version != sent_version:
                    sent_version = version
                    views = [entry.view() for entry in self.queue.pending()]
                    yield _event("pending", views)
                records = self._feed_since(seen)
                if records:
                    seen = records[-1]["seq"]
                    yield _event("feed", records)
                if self.queue.closed:
                    yield _event("closed", {})
                    return
                try:
                    async with asyncio.timeout(_KEEPALIVE):
                        await wake.wait()
                except TimeoutError:
                    yield ": keep-alive\n\n"
        finally:
            with self._lock:
                self._pokes.pop(key, None)


def _event(name: str, data: object) -> str:
    # json.dumps writes no raw new line, so one data line holds it all.
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _printable_record(record: dict[str, Any]) -> dict[str, Any]:
    def clean(value: object) -> Any:
        if isinstance(value, str):
            return printable(value, 500)
        if isinstance(value, dict):
            return {printable(str(k), 200): clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        if value is None or isinstance(value, int | float | bool):
            return value
        return printable(str(value), 500)

    return {key: clean(value) for key, value in record.items()}


def _login_page(error: str, status: int = 200) -> Response:
    page = _asset("login.html").replace("{error}", html.escape(error))
    return Response(
        page, status_code=status, media_type="text/html; charset=utf-8"
    )


async def _body(request: Request) -> bytes | None:
    """The request's body, or `None` when it is longer than the limit."""
    length = request.headers.get("content-length")
    if length is not None and (
        not length.isdigit() or int(length) > _BODY_LIMIT
    ):
        return None
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > _BODY_LIMIT:
            return None
    return bytes(chunks)


# -- serving ---------------------------------------------------------------------


class Served(NamedTuple):
    """
    A console served in the background: its `url`, the `token` that
    signs in, and `stop()`, which closes the approver (denying whatever
    is pending) and stops the server. `login_url` is `url` with the token
    in its fragment.
    """

    url: str
    token: str
    stop: Callable[[], None]

    @property
    def login_url(self) -> str:
        """The URL that signs in: the token in its fragment."""
        return f"{self.url}#token={self.token}"


def _listening_socket(
    host: str, port: int, *, allow_remote: bool
) -> socket.socket:
    if not allow_remote and not is_loopback(host):
        msg = (
            f"refusing to serve the approval console on {host!r}, which is "
            "not a loopback address: anyone who reaches it and holds the "
            "token can approve tool calls. Pass allow_remote=True (behind "
            "TLS) if you mean it"
        )
        raise ValueError(msg)
    family, kind, proto, _, address = socket.getaddrinfo(
        host.strip("[]"), port, type=socket.SOCK_STREAM
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def _config(approver: WebApprover, log_level: str) -> Any:
    """The uvicorn configuration both ways of serving use."""
    import uvicorn

    return uvicorn.Config(
        approver.app,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
    )


def serve_in_background(
    approver: WebApprover,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    allow_remote: bool = False,
    log_level: str = "warning",
) -> Served:
    """
    Serve *approver*'s console on a uvicorn server in a daemon thread,
    and start its decision feed. Returns `(url, token, stop)`; the
    server is listening when it returns. *port* 0 picks a free port.

    A *host* that is not a loopback address is refused unless
    *allow_remote* is true (and then the approver's `allowed_hosts` must
    name the host the browser uses). `stop()` closes the approver and
    stops the server; calling it twice is harmless.

    Examples:
        >>> import httpx
        >>> from capscope.approvers import WebApprover
        >>> from capscope.approvers.web import serve_in_background
        >>> url, token, stop = serve_in_background(WebApprover())
        >>> try:
        ...     print(httpx.get(url + "api/pending").status_code)
        ...     print(httpx.get(url + "api/pending", headers={"Authorization": f"Bearer {token}"}).json())
        ... finally:
        ...     stop()
        401
        []
        >>> serve_in_background(WebApprover(), host="0.0.0.0")
        Traceback (most recent call last):
        ...
        ValueError: refusing to serve the approval console on '0.0.0.0', which is not a loopback address: anyone who reaches it and holds the token can approve tool calls. Pass allow_remote=True (behind TLS) if you mean it
    """
    import uvicorn

    sock = _listening_socket(host, port, allow_remote=allow_remote)
    url = _url(sock)
    config = _config(approver, log_level)
    server = uvicorn.Server(config)
    failed: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # noqa: BLE001 - reported to the caller
            failed.append(exc)

    approver.start()
    thread = threading.Thread(target=run, name="capscope-console", daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        thread.join(0.01)
    if not server.started:
        approver.close()
        sock.close()
        msg = f"the approval console did not start: {failed[:1]!r}"
        raise RuntimeError(msg)
    stopped = threading.Event()

    def stop() -> None:
        if stopped.is_set():
            return
        stopped.set()
        approver.close()  # ends the event streams first
        server.should_exit = True
        thread.join(10)
        sock.close()

    return Served(url, approver.token, stop)


def serve(
    approver: WebApprover,
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    allow_remote: bool = False,
    log_level: str = "warning",
) -> None:
    """
    Serve *approver*'s console in this thread until interrupted (Ctrl-C),
    after printing the sign-in URL, token included, to standard error.
    Your agents run in other threads. The approver is closed on the way
    out. Refuses a non-loopback *host* unless *allow_remote*.
    """
    import uvicorn

    sock = _listening_socket(host, port, allow_remote=allow_remote)
    url = _url(sock)
    print(  # noqa: T201 - the token is printed at start, by design
        f"capscope approval console: {approver.login_url(url)}",
        file=sys.stderr,
        flush=True,
    )
    config = _config(approver, log_level)
    approver.start()
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        approver.close()
        sock.close()
