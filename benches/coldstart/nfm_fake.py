"""A loopback fake of Network Flow Monitor's top-contributors API for the enricher's runs.

moto has no Network Flow Monitor (its server answers these calls with a 500, which the SDK
would retry with backoff: seconds of sleep that are no part of a cold start). The enricher
reaches this fake instead, through AWS_ENDPOINT_URL_NETWORKFLOWMONITOR (the SDK's
service-specific endpoint variable), and gets the project's recorded-shape answers from
tests/fixtures/network-flow-monitor/, served as tests/it/network_flow_monitor.rs's fake does:

- ``POST /monitors/{name}/topContributorsQueries``: a query id of its own per destination
  category (``start-query.json``'s id, prefixed with the category in lower case);
- ``GET  …/topContributorsQueries/{id}/status``: ``status-succeeded.json``;
- ``GET  …/topContributorsQueries/{id}/results``: ``results.json`` then, with its
  ``nextToken``, ``results-page-2.json`` for INTER_VPC; ``results-inter-az.json`` for
  INTER_AZ; ``results-empty.json`` for any other category.

Usage: ``nfm_fake.py FIXTURES_DIR``; prints ``READY <port>``.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(sys.argv[1])
QUERY_ID = json.loads((FIXTURES / "start-query.json").read_text())["queryId"]


def fixture(name):
    return (FIXTURES / name).read_bytes()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY: headers and body go out as separate writes; with Nagle on, the body waits
    # for the peer's delayed ACK (40 ms on Linux), a stall no real endpoint adds.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def _answer(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        request = json.loads(self.rfile.read(length) or b"{}")
        parts = urlsplit(self.path).path.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "monitors" or parts[2] != "topContributorsQueries":
            self._answer(404, b'{"message": "unknown path"}')
            return
        category = request.get("destinationCategory", "")
        query_id = QUERY_ID if category == "INTER_VPC" else f"{category.lower()}-{QUERY_ID}"
        self._answer(200, json.dumps({"queryId": query_id}).encode())

    def do_GET(self):
        url = urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        if len(parts) != 5 or parts[0] != "monitors" or parts[2] != "topContributorsQueries":
            self._answer(404, b'{"message": "unknown path"}')
            return
        query_id, call = parts[3], parts[4]
        if call == "status":
            self._answer(200, fixture("status-succeeded.json"))
        elif call == "results":
            token = parse_qs(url.query).get("nextToken")
            if query_id == QUERY_ID:
                self._answer(200, fixture("results-page-2.json" if token else "results.json"))
            elif query_id.startswith("inter_az-"):
                self._answer(200, fixture("results-inter-az.json"))
            else:
                self._answer(200, fixture("results-empty.json"))
        else:
            self._answer(404, b'{"message": "unknown call"}')


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"READY {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
