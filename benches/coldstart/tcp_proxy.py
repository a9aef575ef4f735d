"""A transparent TCP forwarder in front of moto_server that timestamps each new connection.

Usage: ``tcp_proxy.py TARGET_PORT``. Listens on a free 127.0.0.1 port, prints ``READY <port>``,
then for every accepted connection one line ``<time.monotonic_ns()>`` (CLOCK_MONOTONIC, the
bench's clock) before forwarding bytes both ways to 127.0.0.1:TARGET_PORT. One thread, one
``selectors`` loop: a few microseconds per chunk, the same for every function measured.

The bench reads these lines to tell, per run, when the bootstrap made its first AWS
connection (end of its local start-up work) relative to its spawn.
"""
import selectors
import socket
import sys
import time


def main():
    target = ("127.0.0.1", int(sys.argv[1]))
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, None)
    print(f"READY {listener.getsockname()[1]}", flush=True)
    peers = {}

    def close(sock):
        other = peers.pop(sock, None)
        for each in (sock, other):
            if each is None:
                continue
            peers.pop(each, None)
            try:
                selector.unregister(each)
            except (KeyError, ValueError):
                pass
            each.close()

    while True:
        for key, _ in selector.select():
            if key.data is None:
                try:
                    client, _ = listener.accept()
                except BlockingIOError:
                    continue
                print(time.monotonic_ns(), flush=True)
                try:
                    upstream = socket.create_connection(target)
                except OSError:
                    client.close()
                    continue
                for sock in (client, upstream):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    sock.setblocking(False)
                peers[client], peers[upstream] = upstream, client
                selector.register(client, selectors.EVENT_READ, "pipe")
                selector.register(upstream, selectors.EVENT_READ, "pipe")
                continue
            sock = key.fileobj
            try:
                data = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            other = peers.get(sock)
            if not data or other is None:
                close(sock)
                continue
            try:
                other.setblocking(True)
                other.sendall(data)
                other.setblocking(False)
            except OSError:
                close(sock)


if __name__ == "__main__":
    main()
