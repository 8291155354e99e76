"""Bodies framed every legal way, against gunicorn: over 1 MiB is a 413 and stores nothing.

A body with a Content-Length can be refused before it is read; a chunked one
only once it has been read past the limit, and it must be refused then too,
not cut at the limit and parsed.
"""
import json
import socket
import threading

import pytest

from tests.reliability.helpers import stored

MiB = 1024 * 1024
REQUEST_TIMEOUT = 30
ENDPOINTS = [
    ("/api/v1/products", {"name": "Lamp"}),
    ("/async_process/start", {"steps": 1}),
    ("/api/v1/jobs/integrate", {"f": "x", "a": 0, "b": 1, "c": 0, "d": 1}),
]


def chunked(body: bytes, chunk_size: int) -> bytes:
    """Encode body in chunks of chunk_size bytes, and the closing empty chunk."""
    chunks = [body[i:i + chunk_size] for i in range(0, len(body), chunk_size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"


def post(port: int, path: str, headers: dict[str, str], payload: bytes) -> tuple[int, dict]:
    """Send a POST of raw bytes, reading the answer while still sending; return status and JSON.

    A server that refuses a body part way closes the connection, so the
    answer is read by another thread than the one still writing.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=REQUEST_TIMEOUT)
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request = f"POST {path} HTTP/1.1\r\nHost: localhost\r\n{head}Connection: close\r\n\r\n"

    def send() -> None:
        try:
            sock.sendall(request.encode() + payload)
        except OSError:
            pass  # the server stopped reading: its answer says why

    sender = threading.Thread(target=send)
    sender.start()
    answer = b""
    try:
        while data := sock.recv(65536):
            answer += data
    except ConnectionResetError:
        pass
    sender.join(timeout=REQUEST_TIMEOUT)
    sock.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


@pytest.fixture
def port(web) -> int:
    return web.wait_ready()


@pytest.mark.parametrize("path, body", ENDPOINTS)
@pytest.mark.parametrize("padding, chunk_size", [(3 * MiB, 65536), (MiB, 1000)])
def test_a_chunked_body_over_the_limit_is_413_and_stores_nothing(
        port, app, auth, path, body, padding, chunk_size):
    before = stored(app)
    payload = json.dumps(body).encode() + b" " * padding + b"garbage"
    status, answer = post(port, path, {**auth, "Content-Type": "application/json",
                                       "Transfer-Encoding": "chunked"},
                          chunked(payload, chunk_size))
    assert (status, answer["code"]) == (413, 413)
    assert stored(app) == before


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_body_of_exactly_the_limit_is_accepted(port, app, auth, framing):
    product = json.dumps({"name": "Lamp"}).encode()
    payload = product + b" " * (MiB - len(product))
    headers = {**auth, "Content-Type": "application/json"}
    if framing == "chunked":
        headers["Transfer-Encoding"] = "chunked"
        payload = chunked(payload, 65536)
    else:
        headers["Content-Length"] = str(len(payload))
    status, answer = post(port, "/api/v1/products", headers, payload)
    assert (status, answer["name"]) == (201, "Lamp")
    assert [name for _, name, _ in stored(app)[0]] == ["Lamp"]


def test_a_content_length_over_the_limit_is_413_before_the_body_is_read(port, app, auth):
    status, answer = post(port, "/api/v1/products",
                          {**auth, "Content-Type": "application/json",
                           "Content-Length": str(MiB + 1)}, b"{")
    assert (status, answer["code"]) == (413, 413)
    assert stored(app) == ([], 0)
