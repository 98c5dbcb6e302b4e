"""A webhook receiver for the relay's tests, written against the Standard
Webhooks reference library (PyPI `standardwebhooks`), not against the
relay's code: every request's signature is verified with it.

It misbehaves on purpose, at random (seeded): it answers 500 (sometimes
with Retry-After), or stalls past the relay's timeout before answering.
Each request is recorded as one JSON line in the record file:
{"path", "id", "revision", "outcome"} where outcome is "acknowledged" (a 2xx
was sent in time), "failed" (500), "stalled" (answered late) or
"bad-signature" (verification failed: 401).

Usage: webhook_receiver.py PORT_FILE RECORD_FILE SECRET SEED FAIL_RATE STALL_RATE STALL_SECONDS [PORT]
"""

import json
import random
import sys
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

port_file, record_file, secret, seed, fail_rate, stall_rate, stall_seconds = sys.argv[1:8]
verifier = Webhook(secret)
rng = random.Random(int(seed))
fail_rate, stall_rate, stall_seconds = float(fail_rate), float(stall_rate), float(stall_seconds)
lock = threading.Lock()


def record(path, msg_id, revision, outcome, latency_ms=None):
    line = {"path": path, "id": msg_id, "revision": revision, "outcome": outcome, "latency_ms": latency_ms}
    with lock, open(record_file, "a") as f:
        f.write(json.dumps(line) + "\n")
        f.flush()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        msg_id = headers.get("webhook-id")
        try:
            payload = verifier.verify(body, headers)
        except WebhookVerificationError:
            record(self.path, msg_id, None, "bad-signature")
            self.send_response(401)
            self.end_headers()
            return
        revision = int(payload["revision"])
        with lock:
            roll = rng.random()
        if roll < fail_rate:
            record(self.path, msg_id, revision, "failed")
            self.send_response(500)
            if roll < fail_rate / 2:
                self.send_header("Retry-After", "1")
            self.end_headers()
            self.wfile.write(b"try again")
            return
        if roll < fail_rate + stall_rate:
            time.sleep(stall_seconds)
            record(self.path, msg_id, revision, "stalled")
            try:
                self.send_response(200)
                self.end_headers()
            except OSError:
                pass
            return
        # From the changeset's commit on the server to its arrival here.
        recorded = datetime.fromisoformat(payload["recordedAt"].replace("Z", "+00:00")).timestamp()
        record(self.path, msg_id, revision, "acknowledged", (time.time() - recorded) * 1000)
        self.send_response(204)
        self.end_headers()


port = int(sys.argv[8]) if len(sys.argv) > 8 else 0
server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os  # noqa: E402

os.replace(port_file + ".tmp", port_file)
server.serve_forever()
