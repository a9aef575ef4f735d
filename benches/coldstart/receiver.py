"""The HTTPS webhook receiver of the cold-start bench: DevOps Agent's side, on loopback.

Run by benches/coldstart/run.py as its own process (so its TLS work does not share the bench's
interpreter with the Runtime API's timestamps). It serves HTTPS on 127.0.0.1 with the leaf
certificate the bench generated (signed by the bench's CA, which the bootstraps trust through
SSL_CERT_FILE), answers every POST with 200 ``{"ok": true}``, and checks the request the way
DevOps Agent does: ``x-amzn-event-signature`` must be base64 HMAC-SHA256 of
``"{x-amzn-event-timestamp}:{body}"`` under the webhook secret.

Configuration comes from the environment (the secret is never on a command line):
RECEIVER_CERT, RECEIVER_KEY (PEM paths) and RECEIVER_SECRET. It prints ``READY <port>``, then
one JSON line per request: ``{"at_ns", "path", "valid", "bytes"}`` with ``at_ns`` the
``time.monotonic_ns()`` at which the body was read. Neither the secret nor a signature is
ever printed.
"""
import base64
import hashlib
import hmac
import json
import os
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = os.environ["RECEIVER_SECRET"].encode()
OUTPUT = threading.Lock()


def emit(line):
    with OUTPUT:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY: headers and body go out as separate writes; with Nagle on, the body waits
    # for the peer's delayed ACK (40 ms on Linux), a stall no real endpoint adds.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        at = time.monotonic_ns()
        stamp = self.headers.get("x-amzn-event-timestamp", "")
        given = self.headers.get("x-amzn-event-signature", "")
        expected = base64.b64encode(
            hmac.new(SECRET, stamp.encode() + b":" + body, hashlib.sha256).digest()).decode()
        valid = bool(stamp) and hmac.compare_digest(given, expected)
        answer = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
        emit(json.dumps({"at_ns": at, "path": self.path, "valid": valid, "bytes": len(body)}))


def main():
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(os.environ["RECEIVER_CERT"], os.environ["RECEIVER_KEY"])
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    emit(f"READY {server.server_address[1]}")
    server.serve_forever()


if __name__ == "__main__":
    main()
