"""The flask commands: users create and seed."""
from models import Product, User, db, hash_token


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
