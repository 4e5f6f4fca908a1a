"""Test worker: answers every connection on the inherited socket fd (argv[1]) with its pid.

With $NOTIFY_SOCKET set it says READY=1 after argv[2] seconds (default 0), as a real
server would once it has loaded what it needs.
"""

import os
import socket
import sys
import time

listener = socket.socket(fileno=int(sys.argv[1]))
listener.setblocking(True)
if os.environ.get("NOTIFY_SOCKET"):
    time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 0.0)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
while True:
    connection, _ = listener.accept()
    connection.sendall(str(os.getpid()).encode())
    connection.close()
