"""Servers the tests start and stop themselves: Redis, a worker, beat, Flower, broken brokers."""
import base64
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import redis
from sqlalchemy.engine import URL, make_url

from config import database_uri

ROOT = Path(__file__).resolve().parent.parent


def wait_for(condition: Callable[[], Any], timeout: float = 10, interval: float = 0.02) -> Any:
    """Poll condition until it returns something truthy; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(interval)


@contextmanager
def scratch_database(server_url: str, prefix: str) -> Iterator[URL]:
    """Create an empty PostgreSQL database on the server at server_url; drop it afterwards."""
    admin = make_url(database_uri(server_url)).set(drivername="postgresql")
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name)
    finally:
        with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_answers(url: str) -> bool:
    try:
        return redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        return False


class NoTLS(Exception):
    """This redis-server (or machine) cannot serve TLS."""


class RedisServer:
    """A private redis-server on a free port, that a test may stop and restart.

    With tls=True it only speaks TLS, with a self-signed certificate, as
    Heroku Key-Value Store does; its URL is rediss:// without ssl_cert_reqs.
    """

    def __init__(self, directory: Path, port: int | None = None, tls: bool = False) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.tls = tls
        self.url = f"{'rediss' if tls else 'redis'}://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> "RedisServer":
        listen = self.tls_arguments() if self.tls else ["--port", str(self.port)]
        self.process = subprocess.Popen(
            ["redis-server", *listen, "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        url = f"{self.url}?ssl_cert_reqs=none" if self.tls else self.url

        def answers() -> bool:
            if self.process.poll() is not None:
                raise NoTLS("redis-server exited") if self.tls else RuntimeError("redis-server exited")
            return redis_answers(url)

        wait_for(answers)
        return self

    def tls_arguments(self) -> list[str]:
        """Make a self-signed certificate; return redis-server's TLS-only listening options."""
        cert, key = self.directory / "redis.crt", self.directory / "redis.key"
        if shutil.which("openssl") is None:
            raise NoTLS("openssl is not on PATH")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                       check=True, capture_output=True, timeout=60)
        return ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(cert),
                "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert),
                "--tls-auth-clients", "no"]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop redis-server with sig: SIGTERM lets it close its clients, SIGKILL does not."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=10)

    def client(self) -> redis.Redis:
        options = {"ssl_cert_reqs": "none"} if self.tls else {}
        return redis.Redis.from_url(self.url, socket_timeout=5, **options)


@contextmanager
def private_redis(directory: Path, tls: bool = False) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        raise FileNotFoundError("redis-server is not on PATH")
    server = RedisServer(directory, tls=tls)
    try:
        yield server.start()
    finally:
        server.stop()


@contextmanager
def refusing_port() -> Iterator[int]:
    """A port where nothing listens: connections are refused at once."""
    yield free_port()


@contextmanager
def hanging_listener(port: int = 0) -> Iterator[int]:
    """A port (a free one by default) that accepts connections and never answers on them."""
    listener = socket.create_server(("127.0.0.1", port))
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        # shutdown() wakes the thread blocked in accept(); close() alone would not.
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        for sock in accepted:
            sock.close()


@contextmanager
def silent_host() -> Iterator[int]:
    """A port whose connections are never completed, like a host that does not answer.

    A listener that never accepts and whose backlog is full makes the kernel
    drop further SYNs, so connect() waits just as it would for a dead host,
    without sending anything off this machine.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    try:
        yield port
    finally:
        for sock in [*fillers, listener]:
            sock.close()


class Worker:
    """A real `celery -A wsgi:celery worker` subprocess, as the README starts it.

    Given a shell command line instead (the Procfile's), the worker runs that,
    in a process group of its own, as on a dyno.
    """

    def __init__(self, env: Mapping[str, str], *args: str, shell: str | None = None) -> None:
        self.name = f"test-{uuid.uuid4().hex[:8]}@localhost"
        self.log = ROOT / "test-artifacts" / f"worker-{self.name.split('@')[0]}.log"
        self.log.parent.mkdir(exist_ok=True)
        if shell is None:
            command = [sys.executable, "-m", "celery", "-A", "wsgi:celery", "worker",
                       "--loglevel=INFO", "--without-gossip", "--hostname", self.name, *args]
        else:
            command = ["bash", "-c", f"{shell} --hostname {self.name}"]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env={**os.environ, **env}, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )

    def wait_ready(self, celery, timeout: float = 30) -> "Worker":
        def answers() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log.read_text()[-2000:]}")
            return bool(celery.control.ping(destination=[self.name], timeout=0.5))

        wait_for(answers, timeout=timeout)
        return self

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


class Beat:
    """A real `celery beat`, started with a Procfile's command as Heroku runs it: by bash, in a group of its own."""

    def __init__(self, command: str, env: Mapping[str, str]) -> None:
        self.log = ROOT / "test-artifacts" / f"beat-{uuid.uuid4().hex[:8]}.log"
        self.log.parent.mkdir(exist_ok=True)
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                ["bash", "-c", command], cwd=ROOT, env={**os.environ, **env}, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )

    def stop(self, timeout: float = 10) -> int | None:
        """Send SIGTERM to the group, as Heroku does; return the exit status, or None if it had to be killed."""
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            return self.process.wait(timeout=timeout)
        except ProcessLookupError:
            return self.process.wait()
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            return None

    def output(self) -> str:
        return self.log.read_text(errors="replace")


class Flower:
    """A real Flower, run with a command line (the Pipfile's `flower` script) on a free port.

    It asks for a password, as it must wherever it is reachable, and does not
    turn on the workers' events itself (FLOWER_ENABLE_EVENTS=false): whatever
    it shows, the workers sent of their own accord.
    """

    user = "flower"

    def __init__(self, command: str, env: Mapping[str, str]) -> None:
        self.port = free_port()
        self.password = uuid.uuid4().hex
        self.log = ROOT / "test-artifacts" / f"flower-{self.port}.log"
        self.log.parent.mkdir(exist_ok=True)
        variables = {**os.environ, **env, "FLOWER_BASIC_AUTH": f"{self.user}:{self.password}",
                     "FLOWER_ENABLE_EVENTS": "false", "FLOWER_PERSISTENT": "false"}
        with open(self.log, "wb") as output:
            self.process = subprocess.Popen(
                ["bash", "-c", f"exec {command} --port={self.port}"], cwd=ROOT, env=variables,
                stdout=output, stderr=subprocess.STDOUT, start_new_session=True)

    def get(self, path: str, password: str | None = None) -> tuple[int, Any]:
        """GET path with the password (or another); return the status and the JSON body."""
        if self.process.poll() is not None:
            raise RuntimeError(f"flower exited: {self.log.read_text()[-2000:]}")
        token = base64.b64encode(f"{self.user}:{password or self.password}".encode()).decode()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            connection.request("GET", path, headers={"Authorization": f"Basic {token}"})
            response = connection.getresponse()
            body = response.read()
            json_body = response.status == 200 and response.getheader("Content-Type", "").startswith(
                "application/json")
            return response.status, json.loads(body) if json_body else body
        finally:
            connection.close()

    def wait_ready(self, timeout: float = 30) -> "Flower":
        """Wait until Flower serves its health check, which needs no password."""
        def serves() -> bool:
            try:
                return self.get("/healthcheck")[0] == 200
            except OSError:
                return False

        wait_for(serves, timeout=timeout, interval=0.1)
        return self

    def sees_online(self, worker: str) -> bool:
        """Tell whether Flower has heard worker's heartbeat lately."""
        status, workers = self.get("/api/workers?status=true")
        return status == 200 and workers.get(worker) is True

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


class TCPProxy:
    """A loopback TCP proxy to upstream that a test can cut (closing every connection) and restore."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.listener: socket.socket | None = None
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()

    def start(self) -> "TCPProxy":
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self.accept, args=(self.listener,), daemon=True).start()
        return self

    def accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client = listener.accept()[0]
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                return
            with self.lock:
                self.sockets += [client, server]
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self.pump, args=(source, target), daemon=True).start()

    @staticmethod
    def pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        """Stop listening and close every connection, as a database that went away."""
        # shutdown() wakes the thread blocked in accept(); close() alone would not.
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self.lock:
            for sock in self.sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self.sockets.clear()


class Gunicorn:
    """A web command (the Procfile's), run as Heroku runs it: by bash, in a process group of its own."""

    def __init__(self, command: str, environment: Mapping[str, str], workers: int = 2) -> None:
        self.port = free_port()
        variables = {**os.environ, **environment, "PORT": str(self.port),
                     "WEB_CONCURRENCY": str(workers), "PYTHONUNBUFFERED": "1"}
        self.log = ROOT / "test-artifacts" / f"gunicorn-{self.port}.log"
        self.log.parent.mkdir(exist_ok=True)
        with open(self.log, "wb") as output:
            self.process = subprocess.Popen(
                ["bash", "-c", command], cwd=ROOT, env=variables, stdout=output,
                stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 30) -> int:
        """Wait until /health answers 200; return the port."""
        wait_for(self.serves, timeout=timeout)
        return self.port

    def serves(self) -> bool:
        """Tell whether /health answers 200 yet; fail at once if gunicorn exited."""
        if self.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {self.process.returncode}: "
                               f"{self.log.read_text()[-2000:]}")
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            connection.request("GET", "/health")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def stop(self) -> None:
        """Send SIGTERM to the process group, as Heroku does to a dyno; SIGKILL it if it lingers."""
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return  # gunicorn failed to start, and its group is gone already
        try:
            # gunicorn lets requests in flight finish for graceful_timeout (20 s).
            self.process.wait(timeout=25)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            raise
