"""One HTTP(S) POST to a webhook, bounded as a whole: connecting, sending and the status line
must all fit in its time, however slowly the other end answers.

Redirects are never followed (a POST redirected with 301/302/303 would lose its body), the
response body is never read (a drip, a huge body or a gzip bomb cost nothing), and a 2xx
status line counts as delivered even if the headers after it stall.
"""

from __future__ import annotations

import base64
import enum
import http.client
import socket
import threading
import urllib.parse
from dataclasses import dataclass


class Failure(enum.StrEnum):
    """Why a POST has no HTTP status; the value is the message's `ErrorCode`."""

    TIMEOUT = "Timeout"
    CONNECTION_ERROR = "ConnectionError"
    INVALID_URL = "InvalidURL"


@dataclass(frozen=True)
class Answer:
    """The HTTP status, or the error that kept one from arriving."""

    status: int | None = None
    error: Failure | None = None
    detail: str = ""


def post(url: str, body: bytes, headers: dict[str, str], seconds: float) -> Answer:
    """POST `body` to `url`; the answer within `seconds`, or why there is none."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http(s) URL with a host")
    except ValueError as error:
        return Answer(error=Failure.INVALID_URL, detail=str(error))
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname, port, timeout=max(seconds, 0.001))
    seen: list[int] = []
    connection.response_class = _recording(seen)
    cut = threading.Event()
    watchdog = threading.Timer(seconds, _cut, (connection, cut))
    watchdog.daemon = True
    watchdog.start()
    status = failure = None
    try:
        connection.request(
            "POST",
            urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, "")),
            body=body,
            headers={**headers, **_basic_auth(parts)},
        )
        status = connection.getresponse().status
    except Exception as error:  # noqa: BLE001 - whatever the other end does, the answer is coded
        failure = error
    finally:
        watchdog.cancel()
        connection.close()
    if seen and 200 <= seen[-1] < 300:
        return Answer(status=seen[-1])  # delivered; what came after the status line does not matter
    if cut.is_set() or isinstance(failure, TimeoutError):
        return Answer(error=Failure.TIMEOUT, detail=f"no answer within {seconds:g} s")
    if status is not None:
        return Answer(status=status)
    return Answer(error=Failure.CONNECTION_ERROR, detail=type(failure).__name__)


def _cut(connection: http.client.HTTPConnection, cut: threading.Event) -> None:
    """Past the deadline: shut the socket, which ends any blocked read or write at once."""
    cut.set()
    sock = connection.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class _Delivered(Exception):
    """A 2xx status line is in: nothing after it is read."""


def _recording(seen: list[int]):
    class Response(http.client.HTTPResponse):
        def _read_status(self):  # http.client's private hook: the only place to stop at the status line
            version, status, reason = super()._read_status()  # type: ignore[misc]
            seen.append(status)
            if 200 <= status < 300:
                raise _Delivered
            return version, status, reason

    return Response


def _basic_auth(parts: urllib.parse.SplitResult) -> dict[str, str]:
    if parts.username is None:
        return {}
    pair = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
    return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}
