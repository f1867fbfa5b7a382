"""`asmfield forms` commands."""

import typer

cli = typer.Typer(help="Forms: upload XLSForms/XForms, versions, media.", no_args_is_help=True)
