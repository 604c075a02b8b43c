"""`promobulk api-key`: keys of the HTTP API, shown once and kept only as their hash."""

from __future__ import annotations

from typing import Annotated

import typer

from worker.cli import render
from worker.cli.app import AsJson, Exit, app, console, err_console, jobs, print_json, reports
from worker.domain.enums import Role

keys_app = typer.Typer(help="Keys of the HTTP API.", no_args_is_help=True)
app.add_typer(keys_app, name="api-key")


@keys_app.command("create")
@reports
def create(
    name: Annotated[str, typer.Argument(help="The submitter recorded on this key's jobs")],
    role: Annotated[
        Role,
        typer.Option(
            help="submit: make jobs, see and change its own; read: see every job, change"
            " nothing; operate: everything"
        ),
    ] = Role.SUBMIT,
    as_json: AsJson = False,
) -> None:
    """Make a key; it is shown this once and only its hash is kept."""
    new = jobs().keys.create(name, role)
    if as_json:
        print_json(new)
    else:
        console.print(f"{new.role.value} key {new.id} for {new.name!r} (shown once, keep it now):")
        print(new.key)


@keys_app.command("list")
def list_keys(as_json: AsJson = False) -> None:
    """Keys by id, with their names and first characters; never the keys themselves."""
    found = jobs().keys.list()
    if as_json:
        print_json([k.model_dump(mode="json") for k in found])
    else:
        console.print(render.keys(found))


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[int, typer.Argument(help="The key's id (see `api-key list`)")],
    as_json: AsJson = False,
) -> None:
    """Revoke a key: its next request is refused."""
    if not jobs().keys.revoke(key_id):
        err_console.print(f"no key {key_id}")
        raise typer.Exit(Exit.NOT_FOUND)
    if as_json:
        print_json({"id": key_id, "revoked": True})
    else:
        console.print(f"key {key_id} revoked")
