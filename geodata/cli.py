"""`asmfield geodata` commands."""

import typer

cli = typer.Typer(help="Sites: import, export, formalisation stages.", no_args_is_help=True)
