"""The dashboard served by the daemon itself (`[circus] httpd = true`).

It is the same application as `bigtop web`, run in the daemon's loop, talking to the daemon
through its own control and events endpoints. Imported only when httpd is on, so a daemon
without a dashboard never loads aiohttp.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import TYPE_CHECKING

from bigtop.web.app import Served, create_app, exposure_error, is_loopback, serve
from bigtop.web.auth import new_token
from bigtop.web.source import DaemonLink

if TYPE_CHECKING:
    from bigtop.runtime.arbiter import Arbiter

log = logging.getLogger("bigtop.web")


_token: list[str] = []


def _random_token() -> str:
    """One per daemon process: a `restart` of the daemon keeps the printed URL working."""
    if not _token:
        _token.append(new_token())
    return _token[0]


async def start_dashboard(arbiter: Arbiter) -> Served | None:
    """Serve the dashboard on httpd_host:httpd_port; None (logged) when it cannot listen:
    the processes matter more than their dashboard, so the daemon carries on."""
    circus = arbiter.config.circus
    configured = circus.httpd_token or os.environ.get("BIGTOP_WEB_TOKEN")
    token = configured or _random_token()
    refused = exposure_error(circus.httpd_host, bool(configured), "httpd_token")
    if refused:
        log.error("[circus] httpd_host %s; the dashboard is off", refused)
        return None
    if circus.curve_secret_key:
        log.warning(
            "[circus] httpd: the dashboard reaches the daemon through its control endpoint, "
            "which needs CURVE keys here; run `bigtop web` with client keys instead"
        )
    link = DaemonLink("d0", arbiter.endpoints.control, label=socket.gethostname())
    app = create_app([link], token)
    try:
        served = await serve(app, circus.httpd_host, circus.httpd_port, token)
    except OSError as exc:
        log.error(
            "[circus] httpd: cannot listen on %s:%s (%s); the dashboard is off. Choose "
            "another httpd_host/httpd_port",
            circus.httpd_host,
            circus.httpd_port,
            exc.strerror or exc,
        )
        await link.close()
        return None
    except Exception:  # never let the dashboard take the daemon down
        log.exception("[circus] httpd: the dashboard could not start")
        await link.close()
        return None
    if not is_loopback(circus.httpd_host):
        log.warning("[circus] httpd: the dashboard speaks plain HTTP; put TLS in front of it")
    if configured:
        log.info("dashboard on %s (log in with the configured token)", served.url)
    else:
        log.info("dashboard on %s", served.login_url)
    return served
