#!/usr/bin/env python3
"""The fresh-clone check .ci/run makes before `make test`: against a running `make dev`, wait for
/api/health and for the node `local` to be online, create the first administrator, sign in, and
run one small file backup to a local-disk target through the API until it succeeds.

Usage: smoke-dev.py BASE_URL WORK_DIR [PID]
  WORK_DIR: a scratch directory for the source and target; PID: the `make dev` process, whose end
  stops the wait at once.
Standard library only: it runs before anything else is known to work.
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request

BASE, WORK = sys.argv[1].rstrip("/"), sys.argv[2]
DEV_PID = int(sys.argv[3]) if len(sys.argv) > 3 else None


def call(method, path, body=None, token=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def ok(method, path, body=None, token=None):
    status, reply = call(method, path, body, token)
    if status >= 300 or reply.get("code") != "OK":
        sys.exit(f"smoke: {method} {path} answered {status}: {reply}")
    return reply["data"]


def wait(what, seconds, check):
    deadline = time.monotonic() + seconds
    while True:
        try:
            found = check()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            found = None
        if found:
            return found
        if DEV_PID is not None:
            try:
                os.kill(DEV_PID, 0)
            except ProcessLookupError:
                sys.exit(f"smoke: make dev ended while waiting for {what}")
        if time.monotonic() > deadline:
            sys.exit(f"smoke: gave up waiting {seconds} s for {what}")
        time.sleep(1)


# A fresh clone builds everything first (tens of minutes on a new machine).
wait("/api/health", 3600, lambda: call("GET", "/api/health")[0] == 200)
print("smoke: /api/health answers", flush=True)

password = "smoke test password 1"
ok("POST", "/api/auth/setup", {"username": "smoke", "password": password})
token = ok("POST", "/api/auth/login", {"username": "smoke", "password": password})["token"]


def local_node():
    nodes = ok("GET", "/api/nodes", token=token)
    items = nodes["items"] if isinstance(nodes, dict) else nodes
    return next((n for n in items if n["name"] == "local" and n["status"] == "online"), None)


node = wait("the node `local` to be online", 120, local_node)
print(f"smoke: node local is online (id {node['id']})", flush=True)

source = os.path.join(WORK, "source")
target = os.path.join(WORK, "target")
os.makedirs(os.path.join(source, "docs"), exist_ok=True)
os.makedirs(target, exist_ok=True)
with open(os.path.join(source, "docs", "hello.txt"), "w") as f:
    f.write("hello from the fresh-clone smoke test\n")
with open(os.path.join(source, "data.bin"), "wb") as f:
    f.write(os.urandom(64 * 1024))

storage = ok("POST", "/api/storage-targets",
             {"name": "smoke disk", "type": "local_disk", "config": {"basePath": target}}, token)
storage_id = storage["id"] if "id" in storage else storage["summary"]["id"]
task = ok("POST", "/api/backup/tasks",
          {"name": "smoke", "type": "file", "nodeId": node["id"], "sourcePaths": [source],
           "storageTargetIds": [storage_id]}, token)
record = ok("POST", f"/api/backup/tasks/{task['id']}/run", {}, token)


def settled():
    r = ok("GET", f"/api/backup/records/{record['id']}", token=token)
    return r if r["status"] != "running" else None


done = wait("the backup to end", 120, settled)
if done["status"] != "success" or done["files"] != 2:
    sys.exit(f"smoke: the backup did not succeed with 2 files: {done}")
print(f"smoke: backup record {done['id']} succeeded: {done['files']} files, {done['bytes']} bytes", flush=True)
