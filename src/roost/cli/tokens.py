"""``roost token``: create, list and revoke API tokens (needs an admin token)."""

from __future__ import annotations

import click
from rich.table import Table
from rich.text import Text

from roost.cli.connect import client_options, run
from roost.cli.devices import when
from roost.cli.output import console, echo_json
from roost.hub.tokens import SCOPES


@click.group("token")
def token() -> None:
    """Manage API tokens."""


@token.command("create")
@click.option(
    "--scope",
    "-s",
    "scopes",
    multiple=True,
    type=click.Choice(SCOPES),
    default=("admin",),
    show_default=True,
    help="A scope the token holds (repeatable).",
)
@click.option("--description", "-d", default="", help="What the token is for.")
@click.option("--json", "as_json", is_flag=True)
@client_options
def create(scopes: tuple[str, ...], description: str, as_json: bool) -> None:
    """Create a token and print its secret (shown only this once)."""
    new = run(lambda s: s.create_token(scopes, description))
    if as_json:
        echo_json({"id": new.id, "token": new.token, "scopes": list(new.scopes)})
        return
    out = console()
    out.print(f"Created {new.id} ({', '.join(new.scopes)})", markup=False)
    out.print(f"token: {new.token}", markup=False)


@token.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@client_options
def list_tokens(as_json: bool) -> None:
    """List tokens (their secrets are not stored, so not shown)."""
    tokens = run(lambda s: s.list_tokens())
    if as_json:
        for t in tokens:
            echo_json(
                {
                    "id": t.id,
                    "scopes": list(t.scopes),
                    "description": t.description,
                    "created_at": t.created_at,
                }
            )
        return
    table = Table("id", "scopes", "created", "description")
    for t in tokens:
        table.add_row(t.id, ",".join(t.scopes), when(t.created_at), Text(t.description))
    console().print(table)


@token.command("revoke")
@click.argument("token_id", metavar="ID")
@client_options
def revoke(token_id: str) -> None:
    """Revoke a token: it stops working at once."""
    run(lambda s: s.revoke_token(token_id))
    console().print(f"Revoked {token_id}", markup=False)
