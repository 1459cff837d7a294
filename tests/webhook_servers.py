"""Misbehaving webhook targets: a real HTTP server on 127.0.0.1 whose answer to each POST is
a behaviour, written byte by byte on the socket."""

from __future__ import annotations

import socketserver
import threading

PAUSE_S = 30  # how long "forever" lasts; the server is shut before


class Target:
    """Records (path, method, body) of each request and answers with `behaviour`:
    an int (that status), ("redirect", status, location), "drip" (a 500 status line, then
    headers a byte a second), "huge" (200 with a body of 1 GiB), "stall" (a 200 status line,
    then nothing), "hang" (nothing at all), "gzip-bomb" (200 claiming a gzip body)."""

    def __init__(self, behaviour):
        self.behaviour, self.received, self.bytes_sent = behaviour, [], 0
        self.stopped = threading.Event()
        target = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                request = self.rfile.readline().decode("latin-1").split()
                headers = {}
                while line := self.rfile.readline().decode("latin-1").strip():
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = self.rfile.read(int(headers.get("content-length", 0)))
                target.received.append((request[1], request[0], body, headers))
                target.answer(self.request, request[1])

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, sock, path: str) -> None:
        behaviour = self.behaviour if path == "/hook" else 200  # a redirect's destination accepts
        try:
            if isinstance(behaviour, int):
                sock.sendall(f"HTTP/1.1 {behaviour} X\r\nContent-Length: 0\r\n\r\n".encode())
            elif behaviour[0] == "redirect":
                _, status, location = behaviour
                sock.sendall(f"HTTP/1.1 {status} X\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode())
            elif behaviour == "drip":
                sock.sendall(b"HTTP/1.1 500 X\r\n")
                for byte in b"X-Slow: " + b"a" * PAUSE_S:
                    sock.sendall(bytes([byte]))
                    if self.stopped.wait(1):
                        return
            elif behaviour in ("huge", "gzip-bomb"):
                head = b"HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n"
                sock.sendall(head + (b"Content-Encoding: gzip\r\n" if behaviour == "gzip-bomb" else b"") + b"\r\n")
                chunk = b"\0" * (1 << 20)
                for _ in range(1024):
                    sock.sendall(chunk)
                    self.bytes_sent += len(chunk)
            elif behaviour == "stall":
                sock.sendall(b"HTTP/1.1 200 OK\r\n")
                self.stopped.wait(PAUSE_S)
            elif behaviour == "hang":
                self.stopped.wait(PAUSE_S)
        except OSError:
            pass  # the client hung up: that is the point

    def stop(self) -> None:
        self.stopped.set()
        self.server.shutdown()
        self.server.server_close()
