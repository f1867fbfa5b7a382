"""Helpers shared by the kernel tests: a same-origin web login, and every command of the CLI."""

from __future__ import annotations

import typer.main

from app.cli import cli
from tests.conftest import PASSWORD

#: The Origin header of the TestClient's own site (CSRF checks accept it).
SAME_ORIGIN = {"Origin": "http://testserver"}


def login(client, username="coord", password=PASSWORD):  # noqa: ANN001, ANN201
    """POST the web login form from the same origin; the response is not followed."""
    return client.post("/login", data={"username": username, "password": password}, headers=SAME_ORIGIN,
                       follow_redirects=False)


def all_commands(group=None, prefix=()):  # noqa: ANN001, ANN201
    """(path, click command) for every leaf command of ``asmfield``."""
    group = group or typer.main.get_command(cli)
    for name, command in group.commands.items():
        path = (*prefix, name)
        if hasattr(command, "commands"):
            assert command.help, f"group {' '.join(path)} has no help"
            yield from all_commands(command, path)
        else:
            yield path, command

