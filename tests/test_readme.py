"""The curl examples of the README and docs/ work as written, against a real server and worker."""
import json
import os
import re
import subprocess
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.services import ROOT

PLACEHOLDER = re.compile(r"<(result_id|id)>")


def documentation() -> list[Path]:
    """Return README.md, then the pages of docs/ by name: the order their examples run in."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def curl_commands(path: Path) -> list[str]:
    """Return the curl commands of path's sh blocks, continuation lines joined, comments cut."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", path.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            command = re.split(r"\s+#", line)[0].strip()
            if command.startswith("curl "):
                commands.append(command)
    return commands


def readme_curl_commands() -> list[str]:
    """Return every curl command of the README, then of each page of docs/, in that order."""
    return [command for path in documentation() for command in curl_commands(path)]


@pytest.fixture
def server(app):
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{http.server_port}"
    http.shutdown()


def test_readme_shows_every_api_with_curl():
    assert "/api/v1/products" in " ".join(curl_commands(ROOT / "README.md"))
    paths = " ".join(readme_curl_commands())
    for path in ("/api/v1/products", "/api/v1/products/<id>", "/async_process/start",
                 "/async_process/<result_id>", "/api/v1/jobs/integrate", "/api/v1/jobs/<id>",
                 "/api/v1/jobs?", "/cancel", "/api/v1/add/", "/api/v1/audit", "/health",
                 "/openapi.json"):
        assert path in paths, f"no curl example of {path} in README.md or docs/"


def test_readme_curl_examples_succeed(server, worker, token):
    ids: dict[str, str] = {}
    for command in readme_curl_commands():
        command = command.replace("localhost:5000", server)
        command = PLACEHOLDER.sub(lambda match: ids[match.group(1)], command)
        result = subprocess.run(
            ["bash", "-c", f"{command} -sS -w '\\n%{{http_code}}'"], capture_output=True,
            text=True, timeout=30, env={**os.environ, "TOKEN": token},
        )
        body, _, status = result.stdout.rpartition("\n")
        assert result.returncode == 0, (command, result.stderr)
        assert 200 <= int(status) < 300, (command, status, body)
        if body.startswith("{"):
            answer = json.loads(body)
            for key in ("result_id", "id"):
                if key in answer:
                    ids["result_id"] = ids["id"] = str(answer[key])
