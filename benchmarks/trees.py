"""The code a benchmark runs: this tree, or another git ref's, unpacked on its own.

A ref's processes run its own code only: they start in its folder, with its
Procfile's commands and PYTHONPATH set to it, on the same Python environment.
"""
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What serves the benchmark's extra routes (/bench/ok ...) in a tree that has it.
BENCH_APP = "benchmarks.bench_app:app"
# What the Procfile names, and what the benchmark may serve in its place.
WEB_APP, WORKER_APP = "wsgi:app", "wsgi:celery"


class RefError(RuntimeError):
    """A ref that cannot be checked out to run beside this tree."""


@dataclass(frozen=True)
class Tree:
    """A checkout of the project: its folder, and the commit it came from if it is a ref's."""

    root: Path
    commit: str | None = None

    def procfile(self) -> dict[str, str]:
        """Return the tree's Procfile: process type to command."""
        return procfile(self.root / "Procfile")

    def command(self, process: str, app_spec: str) -> str:
        """Return the Procfile's web or worker command, serving app_spec instead of wsgi's."""
        return self.procfile()[process].replace({"web": WEB_APP, "worker": WORKER_APP}[process],
                                                app_spec)

    def web_app(self) -> str:
        """Return the WSGI app to serve: the one with the benchmark's routes, if the tree has it."""
        return BENCH_APP if (self.root / "benchmarks" / "bench_app.py").exists() else WEB_APP

    def environment(self, env: dict[str, str]) -> dict[str, str]:
        """Return the environment of the tree's processes: this one's, env, and the tree's path."""
        return {**os.environ, **env, "PYTHONPATH": str(self.root)}


def procfile(path: Path) -> dict[str, str]:
    """Read a Procfile's process types and commands."""
    lines = path.read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines
                if line.strip() and not line.startswith("#"))


def resolve(ref: str, repository: Path = ROOT) -> str:
    """Return the commit that ref names in repository's history; raise RefError if none."""
    if not (repository / ".git").exists():
        raise RefError(
            f"--ref {ref} needs the project's git history, and {repository} has none (no .git: "
            f"an unpacked archive?). Run the benchmark from a git clone to compare with a ref.")
    try:
        found = subprocess.run(
            ["git", "-C", str(repository), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
            capture_output=True, text=True, check=False, timeout=30)
    except FileNotFoundError:
        raise RefError(f"--ref {ref} needs git, which is not on PATH") from None
    if found.returncode != 0:
        raise RefError(f"--ref {ref}: no such commit in {repository}'s history "
                       f"(a shallow clone may lack it: git fetch --unshallow)")
    return found.stdout.strip()


def check_out(ref: str, directory: Path, repository: Path = ROOT) -> Tree:
    """Unpack ref's files from repository's history into directory (which must not exist)."""
    commit = resolve(ref, repository)
    archive = directory.with_suffix(".tar")
    subprocess.run(["git", "-C", str(repository), "archive", "--format=tar",
                    f"--output={archive}", commit], check=True, timeout=120)
    with tarfile.open(archive) as files:
        files.extractall(directory, filter="data")
    archive.unlink()
    tree = Tree(directory, commit)
    if not (directory / "Procfile").exists():
        raise RefError(f"--ref {ref} has no Procfile to start its processes with")
    missing = {"web", "worker"} - tree.procfile().keys()
    if missing:
        raise RefError(f"--ref {ref}: its Procfile has no {' or '.join(sorted(missing))} command")
    return tree
