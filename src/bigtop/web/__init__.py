"""The web dashboard: `bigtop web`, or the daemon itself with `[circus] httpd = true`.

`model` is pure (replies and events in, view data out); `auth` holds the token, session and
CSRF rules; `source` talks to a daemon over its control and events endpoints; `hub` polls
each daemon once a second and fans the results out to websocket clients; `app` is the
aiohttp application. Nothing here is imported by a daemon that serves no dashboard.
"""
