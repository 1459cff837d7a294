"""Real servers on 127.0.0.1 for the GCS tests: the storage emulator, a fault-injecting proxy in
front of it, and an OAuth token endpoint for service-account keys."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port}")


class Emulator:
    """gcp-storage-emulator in its own process, in memory."""

    def __init__(self):
        self.port = free_port()
        command = os.path.join(os.path.dirname(sys.executable), "gcp-storage-emulator")
        self.process = subprocess.Popen(
            [command, "start", "--host", "127.0.0.1", "--port", str(self.port), "--in-memory"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@dataclass
class Seen:
    method: str
    path: str
    authorization: str
    answer: str


@dataclass
class FaultProxy:
    """Forwards to the emulator; `rule(method, path)` answers 'pass', 'drop', 'stall' or an
    HTTP status to send instead. Every request is recorded in `seen`."""

    upstream_port: int
    rule: Callable[[str, str], object] = lambda method, path: "pass"
    stall_seconds: float = 3.0
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer = proxy.rule(self.command, self.path)
                proxy.seen.append(Seen(self.command, self.path, self.headers.get("Authorization", ""), str(answer)))
                if answer == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if answer == "stall":
                    time.sleep(proxy.stall_seconds)
                    self.close_connection = True
                    return
                if answer != "pass":
                    data = json.dumps({"error": {"code": answer, "message": "injected"}}).encode()
                    self.send_response(int(answer))
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                # links in the answers (mediaLink) must lead back through the proxy
                data = response.read().replace(proxy.upstream_host, proxy.host)
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                upstream.close()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host = f"127.0.0.1:{self.server.server_address[1]}".encode()
        self.upstream_host = f"127.0.0.1:{self.upstream_port}".encode()
        self.url = f"http://{self.host.decode()}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class TokenServer:
    """An OAuth2 token endpoint: any signed JWT assertion gets the access token `token`."""

    def __init__(self, token: str):
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                data = json.dumps({"access_token": token, "token_type": "Bearer", "expires_in": 3600}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def service_account_key(path: str, token_uri: str) -> None:
    """Write a service-account key file with a fresh RSA key whose tokens come from `token_uri`."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with open(path, "w") as out:
        json.dump(
            {
                "type": "service_account",
                "project_id": "test",
                "private_key_id": "1",
                "private_key": pem,
                "client_email": "reader@test.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": token_uri,
            },
            out,
        )
