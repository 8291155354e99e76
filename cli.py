"""Command-line tools: `flask seed` and `flask users create`."""
import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext

from models import Product, User, create_user, db

users = AppGroup("users", help="Manage API users.")


@click.command("seed")
@with_appcontext
@click.option("--count", default=10, show_default=True, type=click.IntRange(1, 100_000))
def seed(count: int) -> None:
    """Add sample products."""
    db.session.add_all(
        Product(name=f"Sample product {n}", description=f"Sample product number {n}.")
        for n in range(1, count + 1)
    )
    db.session.commit()
    click.echo(f"Added {count} products.")


@users.command("create")
@click.argument("name")
def create(name: str) -> None:
    """Create a user and print their API token (shown only this once)."""
    if db.session.execute(db.select(User).filter_by(name=name)).first():
        raise click.ClickException(f"A user named {name!r} already exists.")
    user, token = create_user(name)
    click.echo(f"Created user {user.name!r}. Their API token, shown only this once:")
    click.echo(token)


def init_app(app: Flask) -> None:
    """Register the commands with app."""
    app.cli.add_command(seed)
    app.cli.add_command(users)
