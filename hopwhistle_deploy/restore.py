"""Bring back a schema backup (``pg_dump -Fc`` from ``schema.in_sync``) into a scratch database.

Run on the server, as root (the backups are 0600 in ``<state_dir>/backups``):

    python -m hopwhistle_deploy.restore --list
    python -m hopwhistle_deploy.restore /var/lib/hopwhistle/backups/callfabric-20250101T120000Z-...dump \\
        --into callfabric_restore

The dump is streamed into ``pg_restore`` inside the postgres container (``docker exec -i``), so neither the
password nor a copy of the dump ever leaves the server. The target must not exist (``--replace`` drops it
first) and is never the live database: inspect the scratch copy, copy rows back with SQL, or swap databases
by hand as ``docs/schema.md`` describes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from hopwhistle_deploy.config import ConfigError, StackConfig, load_config

BACKUPS_DIR = "backups"


class RestoreError(RuntimeError):
    pass


@dataclass(frozen=True)
class Target:
    container: str  # the postgres container
    user: str  # a role that may create databases (the owner of the live one)
    live_database: str  # never restored into


def target_from(config: StackConfig) -> Target:
    return Target(container=config.data_containers.postgres, user=config.database.user, live_database=config.database.name)


def restore_argvs(target: Target, into: str, replace: bool = False) -> list[list[str]]:
    """The commands, in order; the last one reads the dump on stdin."""
    if not into or into == target.live_database:
        raise RestoreError(f"refusing to restore into {into or '(nothing)'}: name a scratch database, not the live one")
    exec_ = ["docker", "exec", target.container]
    argvs = []
    if replace:
        argvs.append([*exec_, "dropdb", "-U", target.user, "--if-exists", into])
    argvs.append([*exec_, "createdb", "-U", target.user, into])
    argvs.append(
        ["docker", "exec", "-i", target.container,
         "pg_restore", "-U", target.user, "-d", into, "--no-owner", "--exit-on-error"]
    )  # fmt: skip
    return argvs


def restore(backup: Path, into: str, target: Target, replace: bool = False) -> None:
    if not backup.is_file():
        raise RestoreError(f"{backup}: no such backup file")
    *setup, load = restore_argvs(target, into, replace)
    for argv in setup:
        _run(argv)
    with backup.open("rb") as dump:
        _run(load, stdin=dump)


def _run(argv: list[str], stdin=None) -> None:
    result = subprocess.run(argv, stdin=stdin, capture_output=True)
    if result.returncode != 0:
        message = (result.stderr or result.stdout).decode(errors="replace").strip()
        raise RestoreError(f"{' '.join(argv[3:5])} failed (exit {result.returncode}): {message}")


def list_backups(state_dir: str) -> list[Path]:
    """Newest first (the names start with the database and the UTC time)."""
    folder = Path(state_dir) / BACKUPS_DIR
    return sorted(folder.glob("*.dump"), reverse=True) if folder.is_dir() else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hopwhistle_deploy.restore", description=__doc__.splitlines()[0])
    parser.add_argument("backup", nargs="?", type=Path, help="the .dump file (see --list)")
    parser.add_argument("--into", help="the scratch database to create and restore into")
    parser.add_argument("--replace", action="store_true", help="drop the scratch database first if it exists")
    parser.add_argument("--list", action="store_true", help="list the backups, newest first")
    parser.add_argument("--config", help="the stack config (default: $HOPWHISTLE_CONFIG or ./hopwhistle.toml)")
    parser.add_argument("--container", help="the postgres container (default: from the config)")
    parser.add_argument("--user", help="the database role (default: from the config)")
    args = parser.parse_args(argv)

    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.list:
        for path in list_backups(config.state_dir):
            print(path)
        return 0
    if args.backup is None or not args.into:
        parser.error("give a backup file and --into SCRATCH_DB (or --list)")

    target = target_from(config)
    target = Target(args.container or target.container, args.user or target.user, target.live_database)
    try:
        restore(args.backup, args.into, target, replace=args.replace)
    except RestoreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"restored {args.backup} into database {args.into} in {target.container}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
