"""`asmfield cases` commands."""

import typer

cli = typer.Typer(help="Child-labour cases: purge, review.", no_args_is_help=True)
