"""Real servers on 127.0.0.1 for the GCS tests: the storage emulator, a fault-injecting proxy in
front of it, and an OAuth token endpoint for service-account keys."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit


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


# GCS's answer to a request whose precondition does not hold
PRECONDITION_FAILED = {
    "error": {
        "code": 412,
        "message": "At least one of the pre-conditions you specified did not hold.",
        "errors": [
            {
                "domain": "global",
                "reason": "conditionNotMet",
                "message": "At least one of the pre-conditions you specified did not hold.",
                "locationType": "header",
                "location": "If-Match",
            }
        ],
    }
}


def precondition_of(path: str, body: bytes) -> tuple[str, str, int] | None:
    """(bucket, object name, generation) of a request's `ifGenerationMatch`, or None. The object
    is the one the path names (the destination of a rewrite or copy; the name may have raw
    slashes, as in the emulator's mediaLink); an insert names it in its query (`name=`) or in
    the JSON metadata that opens its body (multipart, resumable start)."""
    url = urlsplit(path)
    query = parse_qs(url.query)
    if "ifGenerationMatch" not in query or "upload_id" in query:
        return None
    destination = re.split(r"/(?:rewriteTo|copyTo)(?=/b/)", url.path)[-1]
    match = re.fullmatch(r".*?/b/([^/]+)/o(?:/(.+?))?(?:/compose)?", destination)
    assert match, path
    bucket, name = match.groups()
    if name:
        name = unquote(name)
    elif "name" in query:
        name = query["name"][0]
    else:
        name = json.JSONDecoder().raw_decode(body[body.find(b"{") :].decode("utf-8", "replace"))[0]["name"]
    return unquote(bucket), name, int(query["ifGenerationMatch"][0])


@dataclass
class FaultProxy:
    """Forwards to the emulator; `rule(method, path)` answers 'pass', 'drop', 'stall' or an
    HTTP status to send instead. Every request is recorded in `seen`.

    It also enforces `ifGenerationMatch`, which gcp-storage-emulator ignores (it writes, composes,
    copies and deletes whatever the precondition) while GCS answers 412 Precondition Failed when
    the live generation of the object differs (0: there is none). The rule is GCS's documented
    one (cloud.google.com/storage/docs/request-preconditions); the proxy asks the emulator for
    the live generation (GET of the object's metadata; 404 is 0) and answers 412 in GCS's words
    when it differs. Conditional requests are checked and forwarded under one lock, so two
    racing conditional writes cannot both pass, as on GCS. A resumable upload is checked when
    it starts: its later requests go to the emulator directly (its `Location`)."""

    upstream_port: int
    rule: Callable[[str, str], object] = lambda method, path: "pass"
    stall_seconds: float = 3.0
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer = proxy.rule(self.command, self.path)
                seen = Seen(self.command, self.path, self.headers.get("Authorization", ""), str(answer))
                proxy.seen.append(seen)
                if answer == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if answer == "stall":
                    time.sleep(proxy.stall_seconds)
                    self.close_connection = True
                    return
                if answer != "pass":
                    self._reply(int(answer), {"error": {"code": answer, "message": "injected"}})
                    return
                precondition = precondition_of(self.path, body)
                with proxy.lock if precondition else contextlib.nullcontext():
                    if precondition and proxy.generation(*precondition[:2]) != precondition[2]:
                        seen.answer = "412"
                        self._reply(412, PRECONDITION_FAILED)
                        return
                    self._forward(body)

            def _reply(self, status: int, error: dict):
                data = json.dumps(error).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _forward(self, body: bytes):
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

    def generation(self, bucket: str, name: str) -> int:
        """The live generation of an object on the emulator; 0 when there is none."""
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=30)
        try:
            upstream.request("GET", f"/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}")
            response = upstream.getresponse()
            data = response.read()
        finally:
            upstream.close()
        if response.status == 404:
            return 0
        assert response.status == 200, (response.status, data)
        return int(json.loads(data)["generation"])

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
