"""The processes a benchmark runs (gunicorn, a Celery worker) and what /proc says about them."""
import os
import signal
import subprocess
import time
from pathlib import Path

from benchmarks.load import get
from benchmarks.trees import Tree
from tests.services import wait_for

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


class Group:
    """A tree's shell command, run in its folder in a process group of its own (as on a dyno)."""

    def __init__(self, tree: Tree, command: str, env: dict[str, str], log: Path) -> None:
        self.log = log
        with open(log, "ab") as output:
            self.process = subprocess.Popen(
                ["bash", "-c", command], cwd=tree.root, env=tree.environment(env),
                stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def alive(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.log.name} exited:\n{self.output()[-3000:]}")
        return True

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        """Send SIGTERM to the whole group (as Heroku does), then SIGKILL after 30 s."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


class Web(Group):
    """A tree's Procfile web command (gunicorn and its config) serving its web app on port."""

    def __init__(self, tree: Tree, env: dict[str, str], port: int, log: Path) -> None:
        super().__init__(tree, tree.command("web", tree.web_app()), {**env, "PORT": str(port)},
                         log)
        self.url = f"http://127.0.0.1:{port}"
        self.concurrency = int(env["WEB_CONCURRENCY"])

    def wait_ready(self) -> "Web":
        """Wait until every gunicorn worker has loaded the app and its memory holds still."""
        wait_for(lambda: self.alive() and self.answers(), timeout=60, interval=0.1)
        wait_for(lambda: len(self.workers()) == self.concurrency, timeout=30)
        # One worker answered; another may still be importing the app, its memory growing.
        sizes: list[list[int]] = [[]]

        def steady() -> bool:
            now = [rss_bytes([pid]) for pid in self.workers()]
            previous, sizes[0] = sizes[0], now
            return now == previous

        wait_for(steady, timeout=60, interval=0.5)
        return self

    def answers(self) -> bool:
        # Any answer will do, even a 404: gunicorn listens and a worker serves the app.
        try:
            get(f"{self.url}/bench/ready")
            return True
        except OSError:
            return False

    def workers(self) -> list[int]:
        """Return the pids of gunicorn's worker processes (the master's children)."""
        return children(self.process.pid)


class Worker(Group):
    """A tree's Procfile worker command, for the Celery app named by app_spec, plus arguments."""

    def __init__(self, tree: Tree, env: dict[str, str], app_spec: str, log: Path,
                 arguments: str = "") -> None:
        log.write_bytes(b"")
        super().__init__(tree, f"{tree.command('worker', app_spec)} {arguments}".rstrip(), env,
                         log)

    def wait_ready(self) -> "Worker":
        wait_for(lambda: self.alive() and " ready." in self.output(), timeout=60, interval=0.05)
        return self


def children(pid: int) -> list[int]:
    """Return the pids of pid's child processes."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(stat_fields(int(entry.name))[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError):
                continue
    return sorted(found)


def stat_fields(pid: int) -> list[str]:
    """Return /proc/<pid>/stat's fields from the state on (the name may hold spaces)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2:].split()


def cpu_seconds(pids: list[int]) -> float:
    """Return the CPU time (user + system) that pids have used so far."""
    total = 0
    for pid in pids:
        fields = stat_fields(pid)
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / TICKS


def rss_bytes(pids: list[int]) -> int:
    """Return the resident memory of pids, added up."""
    return sum(int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE for pid in pids)


def sockets_to(pids: list[int], remote_port: int) -> list[int]:
    """Return the unread bytes of each of pids' TCP sockets connected to remote_port.

    A pub/sub subscription that nobody reads fills its socket's receive queue
    (and then Redis's output buffer): this is that queue, from /proc/net/tcp.
    """
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    unread = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            remote, queues, inode = fields[2], fields[4], fields[9]
            if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == remote_port:
                unread.append(int(queues.split(":")[1], 16))
    return unread


def settle(seconds: float = 0.5) -> None:
    """Give the machine a moment between runs (sockets closing, logs flushing)."""
    time.sleep(seconds)
