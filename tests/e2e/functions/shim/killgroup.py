"""Script mode, stdin = "query": ?do=kill kills the script's own process group, as a shell
script's `kill 0` does; ?do=hold answers once the test creates ``release`` in ?dir= (its
file ``held`` there says it runs); anything else answers at once."""

import json
import os
import signal
import sys
import time

query = json.loads(sys.stdin.readline())
if query.get("do") == "kill":
    print("about to kill my process group", flush=True)
    os.killpg(os.getpgrp(), signal.SIGKILL)
if query.get("do") == "hold":
    open(os.path.join(query["dir"], "held"), "w").close()
    release = os.path.join(query["dir"], "release")
    for _ in range(6000):  # bounded: 60 s
        if os.path.exists(release):
            break
        time.sleep(0.01)
    print("held" if os.path.exists(release) else "unreleased")
else:
    print("served")
