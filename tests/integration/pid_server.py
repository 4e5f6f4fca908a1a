"""Test worker: answers every connection on the inherited socket fd (argv[1]) with its pid.

With $NOTIFY_SOCKET set it says READY=1 after argv[2] seconds (default 0), as a real
server would once it has loaded what it needs. SIGTERM is graceful, as in a real server:
the connection being answered is finished, then the worker stops accepting and exits
(connections still queued stay on the shared socket for the other workers).
"""

import os
import select
import signal
import socket
import sys
import time

stopping = False


def on_term(signum: int, frame: object) -> None:
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, on_term)
listener = socket.socket(fileno=int(sys.argv[1]))
listener.setblocking(True)
if os.environ.get("NOTIFY_SOCKET"):
    time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 0.0)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
while not stopping:
    readable, _, _ = select.select([listener], [], [], 0.05)
    if not readable:
        continue
    try:
        listener.setblocking(False)  # another worker may have taken it first
        connection, _ = listener.accept()
    except BlockingIOError:
        continue
    finally:
        listener.setblocking(True)
    connection.setblocking(True)
    connection.sendall(str(os.getpid()).encode())
    connection.close()
