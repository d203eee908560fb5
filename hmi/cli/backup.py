"""``hmi backup`` and ``hmi restore``: one backup now, and a verified restore.

``hmi backup`` opens the data directory itself, so it runs with the runtime
stopped (DuckDB lets one process hold the file); a running runtime takes its
own backups on the ``[backup]`` schedule. Both outcomes are in the audit trail.
"""

from __future__ import annotations

from pathlib import Path

import click

from hmi.cli.common import (
    CONFIG_OPTION,
    DATA_OPTION,
    TERMINAL_OPTION,
    explained,
    main,
    read_secret,
)

PASSPHRASE_OPTION = click.option(
    "--passphrase-stdin",
    "passphrase_stdin",
    is_flag=True,
    help="Read the backup passphrase from one line of standard input.",
)


@main.command("backup")
@DATA_OPTION
@CONFIG_OPTION
@TERMINAL_OPTION
@click.option(
    "--to",
    "to",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Backup directory (default: [backup] to, else 'backups' beside the data directory).",
)
@click.option(
    "--keep", type=click.IntRange(1), default=None, help="Backups kept (default: [backup] keep)."
)
@click.option(
    "--private-keys",
    is_flag=True,
    help="Also seal the private keys into the backup under a passphrase "
    "(default: [backup] private_keys).",
)
@PASSPHRASE_OPTION
def backup_command(
    data: Path,
    config: Path | None,
    terminal: str | None,
    to: Path | None,
    keep: int | None,
    private_keys: bool,
    passphrase_stdin: bool,
) -> None:
    """Back up the data directory now (runtime stopped): database, images, anchors, public key.

    With private keys, the passphrase comes from standard input (--passphrase-stdin),
    else from the environment variable [backup] passphrase_env, else it is asked for.
    """
    import os

    from hmi.bootstrap import local_origin, open_services
    from hmi.core.errors import BackupError
    from hmi.store import backup as bk

    origin = local_origin(terminal)
    with explained():
        services = open_services(data, config, verify=False, origin=origin)
        policy = services.config.backup
        dest = to or policy.to or bk.default_destination(data)
        passphrase = None
        if private_keys or policy.private_keys:
            passphrase = os.environ.get(policy.passphrase_env) if not passphrase_stdin else None
            if not passphrase:
                passphrase = read_secret(
                    "Backup passphrase",
                    from_stdin=passphrase_stdin,
                    option="--passphrase-stdin",
                    confirm=True,
                )
        try:
            try:
                result = bk.backup(
                    services.store,
                    dest,
                    by=f"{origin.source} at {origin.terminal_id}",
                    now=services.store.clock.now(),
                    keep=keep or policy.keep,
                    passphrase=passphrase,
                )
            except BackupError as exc:
                services.recorder.commit_now(
                    [bk.audit_entry("backup", "failed", origin, dest, exc.message)]
                )
                raise
            services.recorder.commit_now(
                [bk.audit_entry("backup", "done", origin, result.path, result.summary())]
            )
        finally:
            services.close()
    click.echo(f"Backup complete: {result.path} ({result.files} files, {result.bytes} bytes).")
    for path in result.removed:
        click.echo(f"  removed older backup {path}")
    for path in result.abandoned:
        click.echo(f"  removed incomplete backup {path} (left by a backup that was stopped)")
    if result.private_keys:
        click.echo("  private keys sealed in the backup: keep the passphrase apart from it")


@main.command("restore")
@click.option(
    "--from",
    "source",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The backup directory (custos-backup-...).",
)
@DATA_OPTION
@TERMINAL_OPTION
@click.option(
    "--keys",
    "keys",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="The plant's keys directory (a copy of DATA/keys). Without it, the backup's "
    "sealed private keys are opened with the backup passphrase.",
)
@PASSPHRASE_OPTION
def restore_command(
    source: Path, data: Path, terminal: str | None, keys: Path | None, passphrase_stdin: bool
) -> None:
    """Verify a backup completely, then restore it into a new data directory."""
    from hmi.bootstrap import local_origin
    from hmi.store import backup as bk
    from hmi.store.db import Store
    from hmi.store.key_escrow import SEALED_KEYS_FILE
    from hmi.store.recorder import StoreRecorder
    from hmi.store.restore import restore

    origin = local_origin(terminal)
    passphrase = None
    if keys is None and (source / "keys" / SEALED_KEYS_FILE).is_file():
        passphrase = read_secret(
            "Backup passphrase", from_stdin=passphrase_stdin, option="--passphrase-stdin"
        )
    with explained():
        report = restore(source, data, keys, passphrase=passphrase)
        with Store.open(data) as store:
            StoreRecorder(store).commit_now(
                [
                    bk.audit_entry(
                        "restore",
                        "done",
                        origin,
                        source,
                        f"restored into {data} by {origin.source}; verified: {report.summary()}",
                    )
                ]
            )
            store.checkpoint_now()
    click.echo(f"Restored {source} into {data}: {report.summary()}")
