"""A minimal local Lambda Runtime API (HTTP/1.1, threaded) that serves exactly one invocation.

The endpoints a bootstrap uses (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html):

- ``GET  /2018-06-01/runtime/invocation/next``: the first call gets the event, with
  ``Lambda-Runtime-Aws-Request-Id``, ``Lambda-Runtime-Deadline-Ms``,
  ``Lambda-Runtime-Invoked-Function-Arn`` and ``Lambda-Runtime-Trace-Id``; later calls block
  (as Lambda freezes the sandbox) until the bench kills the process and closes the API.
- ``POST /2018-06-01/runtime/invocation/{id}/response``: the answer.
- ``POST /2018-06-01/runtime/invocation/{id}/error``: a handler error.
- ``POST /2018-06-01/runtime/init/error``: an initialisation error.

Each arrival is timestamped with ``time.monotonic_ns()`` (CLOCK_MONOTONIC, the clock the bench
reads before spawning the process) when its whole body has been read. ``outcome`` is set by the
first response, error or init error, and ``done`` signalled once its 202 has been written;
``parked`` is signalled when the bootstrap asks for its next event (the invocation is over).
"""
import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"


class Outcome:
    """How the invocation ended: ``kind`` is ``response``, ``error`` or ``init-error``."""

    def __init__(self, kind, at_ns, body, error_type=None):
        self.kind = kind
        self.at_ns = at_ns
        self.body = body
        self.error_type = error_type

    def text(self, limit=2000):
        return self.body.decode("utf-8", "replace")[:limit]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """Quiet about connections the killed bootstrap left behind; loud about the rest."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class RuntimeApi:
    """One invocation of ``event`` (bytes) for ``function_arn``; ``start()`` then ``url``."""

    def __init__(self, event, function_arn, timeout_s=30):
        self.event = event
        self.function_arn = function_arn
        self.timeout_s = timeout_s
        self.request_id = str(uuid.uuid4())
        self.next_at_ns = None  # the first GET /next (end of the bootstrap's init)
        self.outcome = None
        self.done = threading.Event()
        self.parked = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._handed_out = False
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def address(self):
        """``host:port``, the value of AWS_LAMBDA_RUNTIME_API."""
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def start(self):
        self._thread.start()
        return self

    def close(self):
        """Releases blocked /next calls and stops serving (after the process is gone)."""
        self._closed.set()
        self._server.shutdown()
        self._server.server_close()

    def _finish(self, kind, body, error_type=None):
        at = time.monotonic_ns()
        with self._lock:
            if self.outcome is None:
                self.outcome = Outcome(kind, at, body, error_type)

    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # TCP_NODELAY: headers and body go out as separate writes; with Nagle on, the
            # body waits for the peer's delayed ACK (40 ms on Linux), a stall no real endpoint
            # adds.
            disable_nagle_algorithm = True

            def log_message(self, *args):  # quiet: the bench prints its own summary
                pass

            def _body(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _answer(self, status, document, headers=()):
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path != PREFIX + "/invocation/next":
                    self._answer(404, {"errorMessage": f"unknown path {self.path}"})
                    return
                with api._lock:
                    first = not api._handed_out
                    api._handed_out = True
                    if first:
                        api.next_at_ns = time.monotonic_ns()
                if not first:
                    # The sandbox would be frozen here; the bench kills the process instead.
                    api.parked.set()
                    api._closed.wait()
                    self.close_connection = True
                    return
                deadline_ms = int(time.time() * 1000) + api.timeout_s * 1000
                trace = (f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};"
                         f"Parent={uuid.uuid4().hex[:16]};Sampled=0;Lineage=1:bench:0")
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(api.event)))
                self.send_header("Lambda-Runtime-Aws-Request-Id", api.request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(deadline_ms))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn", api.function_arn)
                self.send_header("Lambda-Runtime-Trace-Id", trace)
                self.end_headers()
                self.wfile.write(api.event)

            def do_POST(self):
                body = self._body()
                if self.path == PREFIX + "/init/error":
                    api._finish("init-error", body,
                                self.headers.get("Lambda-Runtime-Function-Error-Type"))
                    self._answer(202, {"status": "OK"})
                    api.done.set()
                    return
                own = f"{PREFIX}/invocation/{api.request_id}/"
                if self.path == own + "response":
                    api._finish("response", body)
                elif self.path == own + "error":
                    api._finish("error", body,
                                self.headers.get("Lambda-Runtime-Function-Error-Type"))
                else:
                    self._answer(404, {"errorMessage": f"unknown path {self.path}"})
                    return
                self._answer(202, {"status": "OK"})
                api.done.set()

        return Handler
