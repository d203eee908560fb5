"""``hmi validate``: the validation kit's installation and operational qualification.

The OQ runs against a scratch data directory and simulated devices on
127.0.0.1, never against the plant's data directory, so it can be run on a
production host before and after an installation or upgrade.
"""

from __future__ import annotations

from pathlib import Path

import click

from hmi.cli.common import explained, main, run


@main.command("validate")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for iq.json, oq.json and validation-report.pdf (must not hold earlier ones).",
)
@click.option(
    "--config",
    "config",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    envvar="HMI_CONFIG",
    help="The plant's configuration directory, whose hash the IQ records.",
)
@click.option(
    "--keep-scratch",
    is_flag=True,
    default=False,
    help="Keep the scratch data directory of the OQ for inspection (its path is printed).",
)
def validate_command(out: Path, config: Path | None, keep_scratch: bool) -> None:
    """Installation and operational qualification: check this installation, write the reports."""
    from hmi.validation.runner import run_validation

    with explained():
        result = run(lambda: run_validation(out, config, keep_scratch=keep_scratch))
    for r in result.results:
        click.echo(
            f"{r.result}  {r.id:6} {r.title} ({', '.join(r.requirements)}) {r.duration_s:.1f} s"
        )
        if not r.passed:
            click.echo(f"      {r.actual}")
    passed = sum(r.passed for r in result.results)
    click.echo(f"{passed} of {len(result.results)} checks passed: {result.oq['result']}")
    for path in result.files:
        click.echo(f"  wrote {path}")
    if result.scratch is not None:
        click.echo(f"  scratch data directory kept: {result.scratch}")
    if not result.passed:
        raise SystemExit(1)
