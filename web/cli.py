"""Command-line tools: `flask db` (Flask-Migrate), `flask seed` and `flask users create|token`."""
import click
from flask import Flask
from flask.cli import AppGroup, ScriptInfo, with_appcontext

from models import USER_NAME_LENGTH, Product, User, create_user, db, issue_token

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


def user_name(context: click.Context, parameter: click.Parameter, name: str) -> str:
    """Accept a user name that the users table can store."""
    if not name.strip() or len(name) > USER_NAME_LENGTH or "\x00" in name:
        raise click.BadParameter(f"must be 1 to {USER_NAME_LENGTH} characters, not blank.")
    return name


def find_user(name: str) -> User | None:
    return db.session.execute(db.select(User).filter_by(name=name)).scalar_one_or_none()


@users.command("create")
@click.argument("name", callback=user_name)
def create(name: str) -> None:
    """Create a user and print their API token (shown only this once)."""
    if find_user(name) is not None:
        raise click.ClickException(f"A user named {name!r} already exists; "
                                   f"`flask users token {name}` gives them a new token.")
    user, token = create_user(name)
    click.echo(f"Created user {user.name!r}. Their API token, shown only this once:")
    click.echo(token)


@users.command("token")
@click.argument("name", callback=user_name)
def token(name: str) -> None:
    """Print a new API token for a user, creating the user if needed; their old token stops working.

    Only the token goes to standard output, so that TOKEN=$(flask users token NAME) works.
    """
    user = find_user(name)
    if user is None:
        user, new_token = create_user(name)
        click.echo(f"Created user {name!r}.", err=True)
    else:
        new_token = issue_token(user)
        click.echo(f"Issued a new token for {name!r}; the old one no longer works.", err=True)
    click.echo(new_token)


def init_app(app: Flask) -> None:
    """Register the commands with app, and `flask db` when the flask command loads it."""
    app.cli.add_command(seed)
    app.cli.add_command(users)
    if loaded_by_the_flask_command():
        # Only `flask db ...` runs migrations (the release phase, developers):
        # Flask-Migrate imports Alembic, Mako and Pygments, 9 to 11 MiB in every
        # process that imports it, so gunicorn and Celery load the app without it.
        from flask_migrate import Migrate

        Migrate(app, db)


def loaded_by_the_flask_command() -> bool:
    """Tell whether the `flask` command is loading the app (flask db, flask shell, flask run)."""
    # The flask command's click context carries its ScriptInfo; gunicorn has no
    # click context, and the celery command's carries an object of its own.
    context = click.get_current_context(silent=True)
    return context is not None and context.find_object(ScriptInfo) is not None
