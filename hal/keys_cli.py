"""``krabby-keys``: make and list the CURVE key pairs that decide who may talk to the robot.

Examples::

    krabby-keys init robot-keys                                   # the robot's pair
    krabby-keys add robot-keys laptop --role policy --out laptop-keys
    krabby-keys add robot-keys alice --role operator --out alice-keys
    krabby-keys list robot-keys
    krabby-keys revoke robot-keys laptop

``add`` writes the client's pair and a copy of the robot's *public* key into ``--out`` (copy that
folder to the client machine) and puts the client's public key on the robot's allow-list. Restart
the server after ``add`` or ``revoke``: the allow-list is read at start-up. The layout is in
:mod:`hal.auth`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import zmq.auth

from hal.auth import (
    AUTHORIZED,
    CLIENT_PUBLIC,
    CLIENT_SECRET,
    ROLES,
    SERVER_PUBLIC,
    SERVER_SECRET,
    AuthError,
    ClientKeys,
    ServerKeys,
)
from hal.config import build_command_parser, parse_command, part, setting
from hal.config.sections import FilesSection

__all__ = ["main", "build_parser", "init_keys", "add_client", "revoke_client", "list_keys"]


def _make_pair(directory: Path, name: str) -> None:
    """Write ``name.key`` and ``name.key_secret`` (0600) into ``directory``."""
    with tempfile.TemporaryDirectory(dir=directory) as scratch:
        public, secret = zmq.auth.create_certificates(scratch, name)
        os.chmod(secret, 0o600)
        os.replace(public, directory / f"{name}.key")
        os.replace(secret, directory / f"{name}.key_secret")


def init_keys(directory: Path) -> ServerKeys:
    """Make the robot's key pair and an empty allow-list in ``directory``.

    Raises:
        AuthError: ``directory`` already holds a robot key (never overwritten).
    """
    if (directory / SERVER_SECRET).exists():
        raise AuthError(f"{directory / SERVER_SECRET} exists; not overwriting the robot's key")
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    _make_pair(directory, SERVER_PUBLIC.removesuffix(".key"))
    for role in ROLES:
        (directory / AUTHORIZED / role).mkdir(parents=True, exist_ok=True)
    return ServerKeys.load(directory)


def _check_name(name: str) -> str:
    if not name or not all(c.isalnum() or c in "-_." for c in name) or name.startswith("."):
        raise AuthError(f"client name {name!r}: use letters, digits, '-', '_' or '.'")
    return name


def add_client(robot_dir: Path, name: str, role: str, out: Path) -> ClientKeys:
    """Make a client pair in ``out`` (with the robot's public key) and allow it on the robot.

    Raises:
        AuthError: bad name or role, the name is taken, ``out`` already holds a client key, or
            ``robot_dir`` holds no robot key.
    """
    if role not in ROLES:
        raise AuthError(f"role {role!r}: valid are {list(ROLES)}")
    _check_name(name)
    ServerKeys.load(robot_dir)  # the robot's keys exist and read
    taken = [robot_dir / AUTHORIZED / r / f"{name}.key" for r in ROLES]
    if any(p.exists() for p in taken):
        raise AuthError(f"a client named {name!r} is already allowed; revoke it or pick another")
    if (out / CLIENT_SECRET).exists():
        raise AuthError(f"{out / CLIENT_SECRET} exists; not overwriting a client key")
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    _make_pair(out, CLIENT_PUBLIC.removesuffix(".key"))
    shutil.copyfile(robot_dir / SERVER_PUBLIC, out / SERVER_PUBLIC)
    allowed = robot_dir / AUTHORIZED / role
    allowed.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / CLIENT_PUBLIC, allowed / f"{name}.key")
    return ClientKeys.load(out)


def revoke_client(robot_dir: Path, name: str) -> list[Path]:
    """Remove ``name`` from the robot's allow-list; returns the removed files."""
    removed = []
    for role in ROLES:
        path = robot_dir / AUTHORIZED / role / f"{_check_name(name)}.key"
        if path.exists():
            path.unlink()
            removed.append(path)
    if not removed:
        raise AuthError(f"no allowed client named {name!r} in {robot_dir / AUTHORIZED}")
    return removed


def list_keys(directory: Path) -> list[str]:
    """Lines describing a robot or client key directory."""
    if (directory / SERVER_SECRET).exists():
        keys = ServerKeys.load(directory)
        lines = [f"robot key {keys.public.decode()} ({directory / SERVER_PUBLIC})"]
        for key, (role, name) in sorted(keys.authorized.items(), key=lambda kv: kv[1]):
            lines.append(f"  {role:<9}{name:<20}{key.decode()}")
        if not keys.authorized:
            lines.append("  no clients allowed yet (krabby-keys add ...)")
        return lines
    keys_c = ClientKeys.load(directory)
    return [f"client key {keys_c.public.decode()} ({directory / CLIENT_PUBLIC})",
            f"  robot key {keys_c.server_public.decode()}"]


@dataclass(frozen=True)
class KeyDirSection:
    """krabby-keys init / list: one key directory."""

    section: ClassVar[str] = "keys"

    directory: Path = setting(positional=True, metavar="DIRECTORY",
                              help="a robot key directory (init: made here; list: a robot's or a "
                                   "client's)")


@dataclass(frozen=True)
class ClientSection:
    """krabby-keys add / revoke: a client on the robot's allow-list."""

    section: ClassVar[str] = "client"

    robot_dir: Path = setting(positional=True, metavar="ROBOT_DIR",
                              help="the robot's key directory (from krabby-keys init)")
    name: str = setting(positional=True, metavar="NAME", help="the client's name")
    role: str | None = setting(None, choices=ROLES,
                               help="policy: may subscribe, command and e-stop; operator: may "
                                    "subscribe, e-stop, RESET, START and send operator commands")


@dataclass(frozen=True)
class InitConfig:
    keys: KeyDirSection = part(KeyDirSection)


@dataclass(frozen=True)
class AddConfig:
    client: ClientSection = part(ClientSection, required=("role",))
    files: FilesSection = part(FilesSection, only=("out",), required=("out",))


@dataclass(frozen=True)
class RevokeConfig:
    client: ClientSection = part(ClientSection, only=("robot_dir", "name"))


@dataclass(frozen=True)
class ListConfig:
    keys: KeyDirSection = part(KeyDirSection)


COMMANDS = {
    "init": (InitConfig, "make the robot's key pair and allow-list"),
    "add": (AddConfig, "make a client key pair and allow it on the robot (--out: the client's "
                       "key directory)"),
    "revoke": (RevokeConfig, "remove a client from the robot's allow-list"),
    "list": (ListConfig, "show the keys in a robot or client key directory"),
}


def build_parser() -> argparse.ArgumentParser:
    return build_command_parser(COMMANDS, prog="krabby-keys", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1])


def main(argv: list[str] | None = None) -> int:
    command, config = parse_command(build_parser(), argv)
    try:
        if command == "init":
            keys = init_keys(config.keys.directory)
            print(f"robot key {keys.public.decode()} written to {config.keys.directory}; keep "
                  f"{SERVER_SECRET} on the robot")
        elif command == "add":
            client = add_client(config.client.robot_dir, config.client.name, config.client.role,
                                Path(config.files.out))
            print(f"{config.client.role} {config.client.name}: key {client.public.decode()} allowed "
                  f"in {config.client.robot_dir}; copy {config.files.out} to the client machine")
        elif command == "revoke":
            for path in revoke_client(config.client.robot_dir, config.client.name):
                print(f"removed {path}")
        else:
            print("\n".join(list_keys(config.keys.directory)))
    except (AuthError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
