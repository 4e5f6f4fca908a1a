"""A pretend worker for the demo: reports what it does, exits cleanly on SIGTERM."""

import os
import random
import signal
import sys
import time

role = sys.argv[1] if len(sys.argv) > 1 else "worker"
wid = sys.argv[2] if len(sys.argv) > 2 else "?"
handled = 0


def stop(signum: int, frame: object) -> None:
    print(f"{role} #{wid} got SIGTERM, finishing after {handled} jobs", flush=True)
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
print(f"{role} #{wid} ready (pid {os.getpid()})", flush=True)
while True:
    time.sleep(random.uniform(1.0, 3.0))
    handled += 1
    print(f"{role} #{wid} handled job {handled}", flush=True)
