"""The demo's web app: a standard-library HTTP server on a socket bigtop hands it.

    python examples/webapp.py FD [WID]

bigtop binds the socket once and passes the same listening fd to every worker, so the
workers share the port and a rolling reload never refuses a connection. Once serving, the
worker tells bigtop it is ready (READY=1 on $NOTIFY_SOCKET, as with systemd).
"""

import os
import signal
import socket
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

fd = int(sys.argv[1])
wid = sys.argv[2] if len(sys.argv) > 2 else "?"


class Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        body = f"Hello from worker #{wid} (pid {os.getpid()})\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        print(f"worker #{wid}: {self.command} {self.path} -> {args[1] if len(args) > 1 else ''}")


class InheritedServer(HTTPServer):
    def __init__(self) -> None:
        super().__init__(("", 0), Hello, bind_and_activate=False)
        self.socket = socket.socket(fileno=fd)
        self.socket.setblocking(True)
        self.server_address = self.socket.getsockname()[:2]


stopping = False


def stop(signum: int, frame: object) -> None:
    """Graceful: finish the request in hand, accept no new one (the other workers will)."""
    global stopping
    stopping = True


def main() -> None:
    server = InheritedServer()
    server.timeout = 0.2  # wake up now and then to see whether we should stop
    signal.signal(signal.SIGTERM, stop)
    host, port = server.server_address[:2]
    print(f"worker #{wid} serving http://{host}:{port}/ (pid {os.getpid()})", flush=True)
    notify = os.environ.get("NOTIFY_SOCKET")
    if notify:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"READY=1", notify)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
    while not stopping:
        server.handle_request()
    print(f"worker #{wid} stopped cleanly", flush=True)


if __name__ == "__main__":
    main()
