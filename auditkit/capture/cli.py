"""The `auditkit gateway` commands: serve the capture gateway, manage its users and deploy keys (and the racks they
are granted), print what sync agents pin (the TLS certificate's fingerprint, the checkpoint key) and the HMAC the
gateway records for a value. Registered on the root group by auditkit/cli.py;
auditkit's errors become one line there.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from auditkit import store
from auditkit.capture import config as config_mod
from auditkit.capture import keys
from auditkit.capture.journal import journal_source
from auditkit.errors import AuditkitError
from auditkit.model.events import value_hmac


def keys_option(func: Any) -> Any:
    return click.option("--keys", "keys_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                        help="The keys file every replica reads (default: the config's, else <journal>-keys.json "
                             "beside the journal, e.g. data/gateway-keys.json).")(func)


def keys_journal_option(func: Any) -> Any:
    """--journal and --config, with --keys: every users/keys command."""
    return keys_option(journal_option(func))


def journal_option(func: Any) -> Any:
    func = click.option("--journal", type=click.Path(dir_okay=False, path_type=Path), default=None,
                        help="The gateway journal (default: the config's, else data/gateway.db).")(func)
    return click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                        default=None, help="gateway.toml")(func)


def _gateway_config(config_path: Path | None, **overrides: Any) -> config_mod.GatewayConfig:
    return config_mod.load(config_path, **overrides)


def _journal_conn(config: config_mod.GatewayConfig) -> tuple[sqlite3.Connection, str]:
    """The journal the Access events of key changes go to, and its chain name."""
    conn = store.open_db(config.journal, durable=True)
    return conn, journal_source(conn, config.name)


@click.group()
def gateway() -> None:
    """The capture gateway: serve it, manage its users and deploy keys."""


@gateway.command("serve")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None)
@click.option("--rack", "racks", multiple=True, help="NAME=URL (URL may carry the rack's credentials); repeatable.")
@click.option("--journal", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--listen", default=None, help="HOST:PORT (default 127.0.0.1:5443).")
@click.option("--http", "plain_http", is_flag=True, default=None, help="Serve plain HTTP (loopback only).")
@click.option("--name", default=None,
              help="The journal's chain name (default: the chain the journal holds, else gateway; another is refused).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the TLS pair and the HMAC key live (default: the journal's folder).")
@click.option("--record-input", is_flag=True, default=None, help="Also record keystrokes of sessions.")
@keys_option
@click.option("--metrics-token-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A file holding a token that may read GET /metrics (besides admin keys).")
def gateway_serve(config_path: Path | None, racks: tuple[str, ...], journal: Path | None, listen: str | None,
                  plain_http: bool | None, name: str | None, data_dir: Path | None,
                  record_input: bool | None, keys_file: Path | None, metrics_token_file: Path | None) -> None:
    """Run the gateway in front of the configured racks. Its state (self-signed TLS pair, HMAC key, named after the
    journal's chain) lives beside the journal unless --data-dir or the config say otherwise."""
    from auditkit.capture import server  # uvicorn, Starlette and aiohttp: loaded only to serve

    config = config_mod.load(config_path, racks=[config_mod.parse_rack_flag(r) for r in racks], journal=journal,
                             listen=listen, http=plain_http, name=name, data_dir=data_dir, record_input=record_input,
                             keys_file=keys_file, metrics_token_file=metrics_token_file)
    server.serve(config)


def _print_key(kind: str, name: str, key: str) -> None:
    click.echo(f"{kind} {name} created. Its key is shown once; it cannot be recovered:", err=True)
    click.echo(key)


@gateway.group("users")
def gateway_users() -> None:
    """Gateway users (email + role)."""


def rack_grant_option(func: Any) -> Any:
    return click.option("--rack", "racks", multiple=True, metavar="RACK",
                        help="Grant only this rack (as the gateway config names it, e.g. acme/staging); repeatable. "
                             "Default: every rack.")(func)


def _check_grants(config: config_mod.GatewayConfig, racks: tuple[str, ...]) -> None:
    """Warn about granted racks the given config does not serve (they may be configured later, or on a replica)."""
    if config.racks:
        for name in sorted(set(r.strip() for r in racks) - set(config.racks)):
            click.echo(f"warning: rack '{name}' is not in this gateway's config "
                       f"({', '.join(sorted(config.racks))})", err=True)


@gateway_users.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(["admin", "member", "auditor"]), required=True)
@rack_grant_option
@keys_journal_option
def users_add(email: str, role: str, racks: tuple[str, ...], journal: Path | None, keys_file: Path | None,
              config_path: Path | None) -> None:
    """Add a user; prints the new key alone on the last line."""
    config = _gateway_config(config_path, journal=journal, keys_file=keys_file)
    conn, source = _journal_conn(config)
    _check_grants(config, racks)
    _, key = keys.add(conn, email, kind="user", role=role, source=source, racks=racks or None,
                      keys_path=config.keys_path)
    _print_key("user", email, key)


@gateway.group("keys")
def gateway_keys() -> None:
    """Deploy keys (named keys for CI; events are recorded under the key's name)."""


@gateway_keys.command("add")
@click.argument("name")
@rack_grant_option
@keys_journal_option
def keys_add(name: str, racks: tuple[str, ...], journal: Path | None, keys_file: Path | None,
             config_path: Path | None) -> None:
    """Add a deploy key; prints the new key alone on the last line."""
    config = _gateway_config(config_path, journal=journal, keys_file=keys_file)
    conn, source = _journal_conn(config)
    _check_grants(config, racks)
    _, key = keys.add(conn, name, kind="deploy_key", role="deploy", source=source, racks=racks or None,
                      keys_path=config.keys_path)
    _print_key("deploy key", name, key)


def _list(kind: str, journal: Path | None, keys_file: Path | None, config_path: Path | None) -> None:
    config = _gateway_config(config_path, journal=journal, keys_file=keys_file)
    table = Table(box=None, header_style="bold")
    for column in ("name", "role", "racks", "key id", "created", "revoked"):
        table.add_column(column)
    for row in keys.list_keys(config.keys_path):
        if row["kind"] == kind:
            grants = "none (auditor)" if row["role"] == "auditor" else keys.grants_text(row["racks"])
            table.add_row(row["name"], row["role"], grants, row["id"], row["created_at"], row["revoked_at"] or "")
    Console().print(table)


def _revoke(name: str, journal: Path | None, keys_file: Path | None, config_path: Path | None) -> None:
    config = _gateway_config(config_path, journal=journal, keys_file=keys_file)
    conn, source = _journal_conn(config)
    for key_id in keys.revoke(conn, name, source=source, keys_path=config.keys_path):
        click.echo(f"revoked {key_id} ({name}); running gateways refuse it within a second")


@gateway_users.command("list")
@keys_journal_option
def users_list(journal: Path | None, keys_file: Path | None, config_path: Path | None) -> None:
    """List users, their roles and the racks they are granted."""
    _list("user", journal, keys_file, config_path)


@gateway_users.command("revoke")
@click.argument("email")
@keys_journal_option
def users_revoke(email: str, journal: Path | None, keys_file: Path | None, config_path: Path | None) -> None:
    """Revoke a user's key (every gateway reading the keys file refuses it within a second)."""
    _revoke(email, journal, keys_file, config_path)


@gateway_keys.command("list")
@keys_journal_option
def keys_list(journal: Path | None, keys_file: Path | None, config_path: Path | None) -> None:
    """List deploy keys and the racks they are granted."""
    _list("deploy_key", journal, keys_file, config_path)


@gateway_keys.command("revoke")
@click.argument("name")
@keys_journal_option
def keys_revoke(name: str, journal: Path | None, keys_file: Path | None, config_path: Path | None) -> None:
    """Revoke a deploy key."""
    _revoke(name, journal, keys_file, config_path)


@gateway_keys.command("migrate")
@keys_journal_option
def keys_migrate(journal: Path | None, keys_file: Path | None, config_path: Path | None) -> None:
    """Copy the users and deploy keys an older journal keeps inside it into the keys file (hashes, grants and
    revocations as they are). Re-running it copies nothing twice; run it once per journal before starting this
    version's gateway on it."""
    config = _gateway_config(config_path, journal=journal, keys_file=keys_file)
    if not config.journal.exists():
        raise AuditkitError(f"no journal at {config.journal}")
    conn = store.open_db(config.journal, durable=True)
    copied, present = keys.migrate_from_journal(conn, config.keys_path)
    click.echo(f"copied {copied} key(s) from {config.journal} into {config.keys_path}"
               + (f" ({present} already there)" if present else ""))


@gateway.command("key")
@journal_option
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the gateway keeps its keys, if not beside the journal.")
def gateway_key(journal: Path | None, config_path: Path | None, data_dir: Path | None) -> None:
    """Print the public key that signs this journal's checkpoints, as a C2SP verifier key (NAME+KEYID+KEY): give it
    to `auditkit sync add --checkpoint-key` and to auditors, who check exports and checkpoints with it."""
    config = _gateway_config(config_path, journal=journal, data_dir=data_dir)
    click.echo(str(config.checkpoint_signer(create=False).verifier))


@gateway.command("fingerprint")
@journal_option
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the gateway keeps its TLS pair, if not beside the journal.")
def gateway_fingerprint(journal: Path | None, config_path: Path | None, data_dir: Path | None) -> None:
    """Print the SHA-256 fingerprint of the gateway's TLS certificate (the config's, else the self-signed one beside
    the journal), as `gateway serve` prints it: give it to `auditkit sync add --fingerprint`."""
    from auditkit.capture.tls import fingerprint, self_signed_paths

    config = _gateway_config(config_path, journal=journal, data_dir=data_dir)
    cert = config.tls_cert or self_signed_paths(config.state_dir, config.name)[0]
    if not cert.exists():
        raise AuditkitError(f"no TLS certificate at {cert}: `auditkit gateway serve` makes it on its first start")
    click.echo(fingerprint(cert))


@gateway.command("hmac")
@click.argument("value")
@journal_option
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the gateway keeps its HMAC key, if not beside the journal.")
@click.option("--key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The HMAC key file itself (default: the config's, else <chain>-hmac.key beside the journal).")
def gateway_hmac(value: str, journal: Path | None, config_path: Path | None, data_dir: Path | None,
                 key_file: Path | None) -> None:
    """Print the HMAC the gateway on this journal records for VALUE (env values, hashed parameters), to compare with
    an event's details. Uses the key the gateway uses: its chain's, found as `gateway serve` finds it."""
    config = _gateway_config(config_path, journal=journal, data_dir=data_dir, hmac_key_file=key_file)
    click.echo(value_hmac(config.hmac_key(create=False), value))
