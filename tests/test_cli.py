"""The flask commands: users create, users token and seed."""
import os
import re
import subprocess

import pytest

from config import from_env
from models import Product, User, db, hash_token
from tests.services import ROOT
from wsgi import create_app


def test_users_create_prints_a_token_and_stores_only_its_hash(runner, app, client):
    result = runner.invoke(args=["users", "create", "bob"])
    assert result.exit_code == 0
    token = result.output.strip().splitlines()[-1]
    with app.app_context():
        user = db.session.execute(db.select(User).filter_by(name="bob")).scalar_one()
        assert user.token_hash == hash_token(token)
        assert token not in (user.token_hash, user.name)
    response = client.post(
        "/api/v1/products", json={"name": "x"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 201


def test_users_create_refuses_a_duplicate_name(runner):
    assert runner.invoke(args=["users", "create", "bob"]).exit_code == 0
    result = runner.invoke(args=["users", "create", "bob"])
    assert result.exit_code != 0
    assert "already exists" in result.output


def test_seed_adds_sample_products(runner, app):
    result = runner.invoke(args=["seed", "--count", "7"])
    assert result.exit_code == 0
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(Product.id))).scalar_one() == 7


def test_users_token_gives_an_existing_user_a_new_token_and_revokes_the_old(runner, client):
    old = runner.invoke(args=["users", "create", "bob"]).output.strip().splitlines()[-1]
    result = runner.invoke(args=["users", "token", "bob"])
    assert result.exit_code == 0
    new = result.stdout.strip()
    assert new and new != old and "no longer works" in result.stderr
    assert can_write(client, new) == 201
    assert can_write(client, old) == 401


def test_users_token_creates_a_missing_user_and_prints_only_the_token(runner, client):
    result = runner.invoke(args=["users", "token", "carol"])
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 1
    assert can_write(client, result.stdout.strip()) == 201


@pytest.mark.parametrize("command", ["create", "token"])
@pytest.mark.parametrize("name", ["", "   ", "x" * 81, "a\x00b"])
def test_user_names_the_table_cannot_store_are_refused(runner, app, command, name):
    result = runner.invoke(args=["users", command, name])
    assert result.exit_code == 2 and "1 to 80 characters" in result.output
    with app.app_context():
        assert db.session.execute(db.select(User)).first() is None


def readme_user_commands() -> list[str]:
    """Return the README's local shell lines that run `flask users`, without `pipenv run`."""
    blocks = re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    lines = [re.split(r"\s+#", line)[0].strip() for block in blocks for line in block.splitlines()]
    return [line.replace("pipenv run ", "")
            for line in lines if "flask users " in line and not line.startswith("heroku ")]


def test_readmes_user_commands_work_when_followed_twice(environment):
    commands = readme_user_commands()
    assert any(command.startswith("TOKEN=$(") for command in commands)
    script = "set -euo pipefail\n" + "\n".join([*commands, *commands]) + '\necho "TOKEN=$TOKEN"\n'
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120,
                            cwd=ROOT, env={**os.environ, **environment, "FLASK_APP": "wsgi"})
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1].removeprefix("TOKEN=")
    app = create_app(from_env(environment))
    assert can_write(app.test_client(), token) == 201


def can_write(client, token: str) -> int:
    """Return the status of a product creation with token."""
    return client.post("/api/v1/products", json={"name": "x"},
                       headers={"Authorization": f"Bearer {token}"}).status_code
