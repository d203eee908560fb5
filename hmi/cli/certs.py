"""``hmi certs``: the plant CA and the terminals' client certificates (11.10(h)).

A remote terminal is known by its certificate; the runtime admits a terminal
whose certificate the plant CA issued, whose common name is a terminal of
plant.toml, and which is not on the revocation list.
"""

from __future__ import annotations

from pathlib import Path

import click

from hmi.cli.common import explained, main

DIR_OPTION = click.option(
    "--dir",
    "directory",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    envvar="HMI_CERTS",
    help="The CA directory (ca.crt, ca.key, crl.pem, issued certificates).",
)


@main.group("certs")
def certs_group() -> None:
    """Terminal certificates: a plant CA, one client certificate per terminal, revocation."""


@certs_group.command("init-ca")
@DIR_OPTION
@click.option("--plant", default="Custos plant", show_default=True, help="Organisation name.")
@click.option("--days", type=click.IntRange(1, 36500), default=3650, show_default=True)
def init_ca(directory: Path, plant: str, days: int) -> None:
    """Create the plant CA and an empty revocation list."""
    from hmi.remote.certs import CertificateAuthority

    with explained():
        ca = CertificateAuthority.init(directory, plant, days=days)
    click.echo(
        f"Created the CA in {directory}. Keep {ca.directory / 'ca.key'} private; "
        f"give {ca.ca_cert_path} to every terminal."
    )


@certs_group.command("issue-server")
@DIR_OPTION
@click.option(
    "--host", "hosts", multiple=True, required=True, help="DNS name or IP terminals connect to."
)
@click.option("--days", type=click.IntRange(1, 3650), default=825, show_default=True)
def issue_server(directory: Path, hosts: tuple[str, ...], days: int) -> None:
    """The runtime's TLS server certificate (server.crt, server.key)."""
    from hmi.remote.certs import CertificateAuthority

    with explained():
        issued = CertificateAuthority(directory).issue_server(hosts=list(hosts), days=days)
    click.echo(f"Wrote {issued.cert} and {issued.key} for {', '.join(hosts)}.")


@certs_group.command("issue-terminal")
@click.argument("terminal_id")
@DIR_OPTION
@click.option("--days", type=click.IntRange(1, 3650), default=825, show_default=True)
def issue_terminal(terminal_id: str, directory: Path, days: int) -> None:
    """A client certificate naming TERMINAL_ID (writes ID.crt and ID.key)."""
    from hmi.remote.certs import CertificateAuthority

    with explained():
        issued = CertificateAuthority(directory).issue_terminal(terminal_id, days=days)
    click.echo(
        f"Wrote {issued.cert} and {issued.key} (serial {issued.serial:x}, valid until "
        f"{issued.not_after:%Y-%m-%d}). Copy both and {directory / 'ca.crt'} to the terminal; "
        f"the key file is the terminal's identity: keep it 0600 there and delete it here."
    )


@certs_group.command("revoke")
@click.argument("terminal_id")
@DIR_OPTION
def revoke(terminal_id: str, directory: Path) -> None:
    """Revoke every certificate of TERMINAL_ID; the server refuses it from the next connection."""
    from hmi.remote.certs import CertificateAuthority

    with explained():
        serials = CertificateAuthority(directory).revoke(terminal_id)
    click.echo(
        f"Revoked {terminal_id}: serial {', '.join(f'{s:x}' for s in serials)}; "
        f"{directory / 'crl.pem'} rewritten."
    )


@certs_group.command("list")
@DIR_OPTION
def list_certs(directory: Path) -> None:
    """Every certificate issued, with its state (those ending within 30 days say so)."""
    import datetime as dt

    from hmi.remote.cert_expiry import WARN_AHEAD, Expiry, end_dates
    from hmi.remote.certs import CertificateAuthority

    with explained():
        index = CertificateAuthority(directory).index()
        ends = end_dates(directory)
    now = dt.datetime.now(dt.UTC)
    for serial, entry in sorted(index.items(), key=lambda kv: (str(kv[1]["id"]), kv[0])):
        expiry = Expiry(f"{entry['id']}", dt.datetime.fromisoformat(str(entry["not_after"])))
        if entry["revoked_at"]:
            state = f"revoked {entry['revoked_at']}"
        elif expiry.expired(now):
            state = "EXPIRED: issue a new one"
        elif expiry.ends - now <= WARN_AHEAD:
            state = f"valid, ENDS IN {expiry.days_left(now)} DAYS: issue a new one"
        else:
            state = "valid"
        click.echo(
            f"{entry['id']:<24} {entry.get('kind', 'terminal'):<8} {int(serial):x}  "
            f"until {entry['not_after']}  {state}"
        )
    for end in ends:
        if end.ends - now <= WARN_AHEAD:
            click.echo(f"Warning: {end.describe(now)}.", err=True)
