"""Who may use the dashboard: one login token, sessions, CSRF and Origin checks.

- The token (`--token`, `BIGTOP_WEB_TOKEN`, `[circus] httpd_token`, or random) logs in:
  `GET /?token=T` or the login form set a session cookie (HttpOnly, SameSite=Strict) and
  redirect to `/`; API clients may send `Authorization: Bearer T` on every request instead.
- Without either, every page, API call and websocket gets 401 (a login form that shows
  nothing of the daemons, or a JSON error).
- Every state change is a POST. A POST made with the session cookie must carry the
  session's CSRF token in `X-CSRF-Token`; any request that names an Origin must name this
  server; the websocket upgrade of a browser session must come from this server's Origin.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware

SESSION_TTL = 7 * 24 * 3600.0
MAX_SESSIONS = 256
CSRF_HEADER = "X-CSRF-Token"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# ---- pure rules ---------------------------------------------------------------------------
def new_token() -> str:
    return secrets.token_urlsafe(18)


def same_secret(given: str | None, expected: str) -> bool:
    """Constant-time comparison (a timing difference must not reveal the token)."""
    if not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def origin_allowed(origin: str | None, scheme: str, host: str | None, extra: Iterable[str]) -> bool:
    """An Origin is this server's own (scheme and Host header) or one configured."""
    if not origin:
        return False
    origin = origin.rstrip("/").lower()
    if origin in {o.rstrip("/").lower() for o in extra}:
        return True
    return host is not None and origin == f"{scheme}://{host}".lower()


@dataclass(slots=True)
class Session:
    ident: str
    csrf: str
    expires: float


class Sessions:
    """Logged-in browsers, in memory (a restart logs everyone out); at most `limit`, the
    oldest dropped first."""

    def __init__(self, ttl: float = SESSION_TTL, limit: int = MAX_SESSIONS) -> None:
        self.ttl = ttl
        self.limit = limit
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def create(self, now: float) -> Session:
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now + self.ttl)
        self._sessions[session.ident] = session
        while len(self._sessions) > self.limit:
            self._sessions.popitem(last=False)
        return session

    def get(self, ident: str | None, now: float) -> Session | None:
        if not ident:
            return None
        session = self._sessions.get(ident)
        if session is None:
            return None
        if session.expires < now:
            del self._sessions[ident]
            return None
        return session

    def drop(self, ident: str | None) -> None:
        if ident:
            self._sessions.pop(ident, None)

    def __len__(self) -> int:
        return len(self._sessions)


@dataclass(frozen=True, slots=True)
class Identity:
    session: Session | None  # None: authenticated by the Bearer token


class Guard:
    def __init__(self, token: str, allowed_origins: Iterable[str] = ()) -> None:
        if not token:
            raise ValueError("the dashboard needs a non-empty token")
        self.token = token
        self.allowed_origins = tuple(allowed_origins)
        self.sessions = Sessions()
        # Cookies are shared by every port of a host: name ours after the token, so two
        # dashboards on one machine do not log each other out.
        self.cookie = "bigtop_" + hashlib.sha256(token.encode()).hexdigest()[:12]

    def identify(self, request: web.Request, now: float) -> Identity | None:
        given = bearer_token(request.headers.get("Authorization"))
        if given is not None:
            return Identity(None) if same_secret(given, self.token) else None
        session = self.sessions.get(request.cookies.get(self.cookie), now)
        return Identity(session) if session is not None else None

    def origin_ok(self, request: web.Request, required: bool) -> bool:
        origin = request.headers.get("Origin")
        if origin is None:
            return not required
        return origin_allowed(origin, request.scheme, request.host, self.allowed_origins)

    def log_in(self, request: web.Request, response: web.StreamResponse, now: float) -> None:
        session = self.sessions.create(now)
        response.set_cookie(
            self.cookie,
            session.ident,
            httponly=True,
            samesite="Strict",
            secure=request.secure,
            path="/",
            max_age=int(self.sessions.ttl),
        )

    def log_out(self, request: web.Request, response: web.StreamResponse) -> None:
        self.sessions.drop(request.cookies.get(self.cookie))
        response.del_cookie(self.cookie, path="/")


# ---- the aiohttp side -------------------------------------------------------------------
LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>bigtop: log in</title>
<link rel="icon" href="data:,">
<style>
body {{ font: 16px system-ui, sans-serif; background: #0f1419; color: #e6e6e6;
  display: grid; place-items: center; min-height: 90vh; margin: 0 }}
form {{ background: #1a2129; padding: 1.5rem; border-radius: 8px; width: min(90vw, 22rem) }}
input {{ width: 100%; box-sizing: border-box; padding: .6rem; margin: .5rem 0 1rem;
  font: inherit; background: #0f1419; color: inherit; border: 1px solid #3a4552;
  border-radius: 4px }}
button {{ padding: .6rem 1.2rem; font: inherit; background: #2f81f7; color: white;
  border: 0; border-radius: 4px }}
.error {{ color: #ff7b72 }}
</style></head>
<body><form method="post" action="/login" id="login">
<h1>bigtop</h1>
<p>{message}</p>
<label for="token">Token</label>
<input id="token" name="token" type="password" autocomplete="current-password" autofocus>
<button type="submit">Log in</button>
</form></body></html>
"""
PROMPT = (
    "Open the URL that <code>bigtop web</code> printed (with <code>?token=</code>), "
    "or paste its token here."
)


def login_page(message: str = PROMPT, status: int = 401) -> web.Response:
    return web.Response(
        text=LOGIN_PAGE.format(message=message),
        status=status,
        content_type="text/html",
        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"},
    )


def redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


def refuse(status: int, reason: str) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="bigtop"'} if status == 401 else {}
    return web.json_response({"error": reason}, status=status, headers=headers)


def _wants_page(request: web.Request) -> bool:
    return request.method == "GET" and (
        request.path == "/" or "text/html" in request.headers.get("Accept", "")
    )


def middleware(guard: Guard) -> Middleware:
    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        now = time.time()
        if request.path == "/login":
            return await login(request, guard, now)
        token = request.query.get("token")
        if request.method == "GET" and token is not None:
            if not same_secret(token, guard.token):
                return login_page('<span class="error">That token is not right.</span>')
            response = redirect(request.path)  # the token leaves the address bar
            guard.log_in(request, response, now)
            return response
        identity = guard.identify(request, now)
        if identity is None:
            if _wants_page(request):
                return login_page()
            return refuse(401, "log in first: open the URL with ?token=, or send "
                          "'Authorization: Bearer TOKEN'")  # fmt: skip
        browser = identity.session is not None
        if request.method not in ("GET", "HEAD"):
            if not guard.origin_ok(request, required=False):
                return refuse(403, "this request comes from another site (Origin)")
            if browser:
                assert identity.session is not None
                if not same_secret(request.headers.get(CSRF_HEADER), identity.session.csrf):
                    return refuse(403, f"missing or wrong CSRF token ({CSRF_HEADER} header)")
        elif request.path == "/ws" and not guard.origin_ok(request, required=browser):
            return refuse(403, "websocket from another site refused (Origin)")
        return await handler(request)

    return check


async def login(request: web.Request, guard: Guard, now: float) -> web.StreamResponse:
    if request.method != "POST":
        return login_page()
    if not guard.origin_ok(request, required=False):
        return refuse(403, "this request comes from another site (Origin)")
    form = await request.post()
    token = form.get("token")
    if not isinstance(token, str) or not same_secret(token.strip(), guard.token):
        return login_page('<span class="error">That token is not right.</span>')
    response = redirect("/")
    guard.log_in(request, response, now)
    return response
