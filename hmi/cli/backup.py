"""``hmi backup`` and ``hmi restore``: one backup now, and a verified restore.

``hmi backup`` opens the data directory itself, so it runs with the runtime
stopped (DuckDB lets one process hold the file); a running runtime takes its
own backups on the ``[backup]`` schedule. Both outcomes are in the audit trail.
"""

from __future__ import annotations

from pathlib import Path

import click

from hmi.cli.common import CONFIG_OPTION, DATA_OPTION, TERMINAL_OPTION, explained, main


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
def backup_command(
    data: Path, config: Path | None, terminal: str | None, to: Path | None, keep: int | None
) -> None:
    """Back up the data directory now (runtime stopped): database, images, anchors, public key."""
    from hmi.bootstrap import local_origin, open_services
    from hmi.core.errors import BackupError
    from hmi.store import backup as bk

    origin = local_origin(terminal)
    with explained():
        services = open_services(data, config, verify=False, origin=origin)
        policy = services.config.backup
        dest = to or policy.to or bk.default_destination(data)
        try:
            try:
                result = bk.backup(
                    services.store,
                    dest,
                    by=f"{origin.source} at {origin.terminal_id}",
                    now=services.store.clock.now(),
                    keep=keep or policy.keep,
                )
            except BackupError as exc:
                services.recorder.commit_now(
                    [bk.audit_entry("backup", "failed", origin, dest, exc.message)]
                )
                raise
            removed = ", ".join(p.name for p in result.removed) or "none"
            services.recorder.commit_now(
                [
                    bk.audit_entry(
                        "backup",
                        "done",
                        origin,
                        result.path,
                        f"{result.files} files, {result.bytes} bytes; removed: {removed}",
                    )
                ]
            )
        finally:
            services.close()
    click.echo(f"Backup complete: {result.path} ({result.files} files, {result.bytes} bytes).")
    for path in result.removed:
        click.echo(f"  removed older backup {path}")


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
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The plant's keys directory (a copy of DATA/keys): backups never hold private keys.",
)
def restore_command(source: Path, data: Path, terminal: str | None, keys: Path) -> None:
    """Verify a backup completely, then restore it into a new data directory."""
    from hmi.bootstrap import local_origin
    from hmi.store import backup as bk
    from hmi.store.db import Store
    from hmi.store.recorder import StoreRecorder

    origin = local_origin(terminal)
    with explained():
        report = bk.restore(source, data, keys)
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
