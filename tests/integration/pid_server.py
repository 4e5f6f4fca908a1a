"""Test worker: answers every connection on the inherited socket fd (argv[1]) with its pid."""

import os
import socket
import sys

listener = socket.socket(fileno=int(sys.argv[1]))
listener.setblocking(True)
while True:
    connection, _ = listener.accept()
    connection.sendall(str(os.getpid()).encode())
    connection.close()
