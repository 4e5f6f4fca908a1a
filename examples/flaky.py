"""A demo service that crashes now and then, to show restarts and backoff."""

import os
import random
import sys
import time

lifetime = random.uniform(2.0, 6.0)
print(f"flaky service up (pid {os.getpid()}); will crash in {lifetime:.1f}s", flush=True)
time.sleep(lifetime)
print("flaky service: something went wrong, exiting with status 3", file=sys.stderr, flush=True)
sys.exit(3)
