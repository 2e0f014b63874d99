"""`rtool` entry point: the click group, global options and the one-line error contract."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from rtool.engine.device import resolve_device
from rtool.errors import UsageError
from rtool_cli.context import GlobalOptions
from rtool_cli.corner import corner
from rtool_cli.detect import detect
from rtool_cli.info import info
from rtool_cli.noc import noc
from rtool_cli.score import score
from rtool_cli.semantic import semantic

EXIT_USAGE = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed for every random choice.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory for results (each command has its own default under ./rtool-out).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="rtool", prog_name="rtool")
@click.pass_context
def app(ctx: click.Context, device: str, seed: int, out: Path | None, quiet: bool, debug: bool) -> None:
    """rtool: how robust is an image classifier really."""
    resolve_device(device)  # reject a bad --device before any work starts
    ctx.obj = GlobalOptions(device=device, seed=seed, out=out, quiet=quiet, debug=debug)


app.add_command(corner)
app.add_command(detect)
app.add_command(info)
app.add_command(score)
app.add_command(semantic)
app.add_command(noc)


def main(argv: list[str] | None = None) -> None:
    """Runs the app; a user error prints one line and exits 2 (a traceback only with --debug)."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        app.main(args=args, prog_name="rtool", standalone_mode=False)
    except click.exceptions.Exit as stop:
        sys.exit(stop.exit_code)
    except click.exceptions.Abort:
        click.echo("rtool: aborted", err=True)
        sys.exit(130)
    except click.ClickException as error:
        if debug:
            raise
        click.echo(f"rtool: error: {error.format_message()}", err=True)
        sys.exit(EXIT_USAGE)
    except UsageError as error:
        if debug:
            raise
        click.echo(f"rtool: error: {error}", err=True)
        sys.exit(EXIT_USAGE)
    sys.exit(0)


if __name__ == "__main__":
    main()
