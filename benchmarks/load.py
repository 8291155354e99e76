"""HTTP load for the benchmark: wrk when it is installed, else a small Python client."""
import http.client
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass

WRK_SCRIPT = """
wrk.method = "{method}"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
"""
UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


@dataclass
class Load:
    """What one load run did: requests answered, over how long, how many failed."""

    requests: int
    seconds: float
    errors: int
    median_latency: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def loader() -> str:
    """Name the load generator this machine has: wrk (accurate) or python (a fallback)."""
    return "wrk" if shutil.which("wrk") else "python"


def load(url: str, seconds: float, connections: int = 8, method: str = "GET",
         body: str = "", use: str | None = None) -> Load:
    """Send requests to url over `connections` concurrent connections for `seconds`."""
    if (use or loader()) == "wrk":
        return wrk(url, seconds, connections, method, body)
    return python_load(url, seconds, connections, method, body)


def wrk(url: str, seconds: float, connections: int, method: str, body: str) -> Load:
    """Run wrk (one thread: it needs little CPU, which the servers need more)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(WRK_SCRIPT.format(method=method, body=body))
        script.flush()
        started = time.monotonic()
        # wrk's -d takes whole seconds.
        output = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
             "-s", script.name, url],
            capture_output=True, text=True, check=True, timeout=seconds + 60,
        ).stdout
        elapsed = time.monotonic() - started
    done = re.search(r"(\d+) requests in ([\d.]+)(\w+)", output)
    if done is None:
        raise RuntimeError(f"could not read wrk's output:\n{output}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                              output)
    median = re.search(r"50%\s+([\d.]+)(\w+)", output)
    return Load(
        requests=int(done[1]),
        seconds=min(elapsed, float(done[2]) * UNITS[done[3]]),
        errors=(int(errors[1]) if errors else 0)
        + (sum(map(int, socket_errors.groups())) if socket_errors else 0),
        median_latency=float(median[1]) * UNITS[median[2]] if median else float("nan"),
    )


def python_load(url: str, seconds: float, connections: int, method: str, body: str) -> Load:
    """Load url from one thread per connection; slower than wrk, and it shares the CPU."""
    host, port, path = split_url(url)
    deadline = time.monotonic() + seconds
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def client() -> None:
        connection = http.client.HTTPConnection(host, port, timeout=30)
        mine: list[float] = []
        failed = 0
        headers = {"Content-Type": "application/json"} if body else {}
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                connection.request(method, path, body=body or None, headers=headers)
                response = connection.getresponse()
                response.read()
                failed += response.status >= 400
            except (OSError, http.client.HTTPException):
                failed += 1
                connection.close()
            mine.append(time.monotonic() - started)
        connection.close()
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Load(len(latencies), time.monotonic() - started, errors[0],
                statistics.median(latencies) if latencies else float("nan"))


def split_url(url: str) -> tuple[str, int, str]:
    """Return the host, port and path of an http:// URL."""
    rest = url.removeprefix("http://")
    address, _, path = rest.partition("/")
    host, _, port = address.partition(":")
    return host, int(port or 80), f"/{path}"


def get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    """Return the status and body of one GET request."""
    return send(url, timeout=timeout)


def send(url: str, method: str = "GET", body: str = "", headers: dict[str, str] | None = None,
         timeout: float = 5) -> tuple[int, bytes]:
    """Return the status and body of one request."""
    host, port, path = split_url(url)
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json", **(headers or {})} if body else headers
        connection.request(method, path, body=body or None, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()
