"""``krabby-teleop``: drive a robot from another machine through its network operator endpoint.

One message, or a command held for a while::

    krabby-teleop tcp://robot:5561 start
    krabby-teleop tcp://robot:5561 --speed 0.6 --yaw-rate 0.2 --mode walk --hold 5
    krabby-teleop tcp://robot:5561 stop        # back to stand;  estop / reset likewise

A motion command lasts while messages keep coming (the robot's lease, 0.5 s): ``--hold S`` resends
it ``--rate`` times a second for S seconds and then sends stop.

Interactive, with the server terminal's keys (arrows / WASD, Enter start, b stand, space e-stop,
r reset, q quit)::

    krabby-teleop tcp://robot:5561 --keys

Interactive mode sends the command in force ``--rate`` times a second, which keeps the robot's
lease alive: if the messages stop (this program or the link dies), the robot stands within the
lease (0.5 s). Quitting sends stop. The robot clamps the speed into its policy's trained range.
"""

from __future__ import annotations

import argparse
import os
import select
import sys
import termios
import time
from dataclasses import dataclass
from typing import ClassVar

from hal.config import build_parser as build_config_parser
from hal.config import parse_cli, part, setting
from hal.config.sections import CommandSection, KeysSection
from hal.operator.base import MODES, Action, OperatorCommand
from hal.operator.keyboard import KEY_HELP, KeyDecoder
from hal.operator.network import TeleopSender

__all__ = ["main", "build_parser", "TeleopConfig", "TeleopSection"]


@dataclass(frozen=True)
class TeleopSection:
    """krabby-teleop's own settings: where, what, and how often."""

    section: ClassVar[str] = "teleop"

    endpoint: str = setting(positional=True, metavar="ENDPOINT",
                            help="the robot's operator endpoint, e.g. tcp://robot:5561")
    action: str | None = setting(None, positional=True, nargs="?",
                                 choices=tuple(a.value for a in Action),
                                 help="start, stop, estop or reset")
    yaw_rate_rad_s: float | None = setting(None, flag="--yaw-rate", metavar="RAD_S",
                                           help="yaw rate, rad/s (left +)")
    hold_s: float = setting(0.0, flag="--hold", metavar="S",
                            help="resend the command for S seconds, then stop (0: send once)")
    # The README's `krabby-teleop ... --key-dir DIR --keys`: --keys is the interactive switch
    # here, so this command spells the shared key directory --key-dir (TeleopConfig).
    interactive: bool = setting(False, flag="--keys", help="interactive: drive with the keys")
    rate_hz: float = setting(10.0, flag="--rate", metavar="HZ",
                             help="interactive: messages per second")


@dataclass(frozen=True)
class TeleopConfig:
    """krabby-teleop's run configuration."""

    teleop: TeleopSection = part(TeleopSection)
    # None: send no speed or mode, the robot keeps its own
    command: CommandSection = part(CommandSection, defaults={"speed_m_s": None, "mode": None})
    keys: KeysSection = part(KeysSection, flags={"keys": "--key-dir"})


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(TeleopConfig, prog="krabby-teleop",
                               description=__doc__.split("\n\n")[0])


def _interactive(sender: TeleopSender, rate_hz: float, fd: int) -> int:
    if not os.isatty(fd):
        print("error: --keys needs a terminal", file=sys.stderr)
        return 2
    decoder = KeyDecoder(source="teleop")
    command = OperatorCommand()
    saved = termios.tcgetattr(fd)
    attrs = termios.tcgetattr(fd)
    attrs[3] &= ~(termios.ICANON | termios.ECHO)
    termios.tcsetattr(fd, termios.TCSANOW, attrs)
    print(KEY_HELP + ", q quit", flush=True)
    period = 1.0 / rate_hz
    next_send = time.monotonic()
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], max(0.0, next_send - time.monotonic()))
            if ready:
                data = os.read(fd, 64)
                if not data or b"q" in data:
                    break
                for event in decoder.feed(data):
                    speed = (event.forward_speed_m_s if event.forward_speed_m_s is not None
                             else command.forward_speed_m_s) + event.speed_step_m_s
                    yaw = (event.yaw_rate_rad_s if event.yaw_rate_rad_s is not None
                           else command.yaw_rate_rad_s) + event.yaw_step_rad_s
                    mode = command.mode
                    if event.toggle_mode:
                        mode = MODES[(MODES.index(mode) + 1) % len(MODES)]
                    command = OperatorCommand(max(speed, 0.0), yaw, mode)
                    if event.action is not None:
                        sender.send(action=event.action)
                    if event.action is Action.STOP:
                        command = OperatorCommand(0.0, 0.0, command.mode)
                    print(f"\r\033[K{command.forward_speed_m_s:.2f} m/s "
                          f"{command.yaw_rate_rad_s:+.2f} rad/s {command.mode}"
                          + (f" {event.action.value}" if event.action else ""), end="", flush=True)
            if time.monotonic() >= next_send:
                sender.send(command.forward_speed_m_s, command.yaw_rate_rad_s, command.mode)
                next_send += period
    except KeyboardInterrupt:
        pass
    finally:
        sender.send(0.0, 0.0, action=Action.STOP)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        print()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    config = parse_cli(TeleopConfig, argv, parser)
    from hal.auth import AuthError, ClientKeys, is_network, secure_client_socket

    try:
        secure = None
        if config.keys.keys:
            keys = ClientKeys.load(config.keys.keys)
            secure = lambda socket: secure_client_socket(socket, keys)  # noqa: E731
        elif is_network(config.teleop.endpoint) and not config.keys.insecure:
            raise AuthError("the operator endpoint admits operator keys only: pass --key-dir DIR "
                            "(krabby-keys add ROBOT_DIR NAME --role operator), or --insecure for "
                            "a server run with --insecure")
        sender = TeleopSender(config.teleop.endpoint, secure=secure)
    except Exception as exc:  # noqa: BLE001 - one line for the operator
        print(f"error: {config.teleop.endpoint}: {exc}", file=sys.stderr)
        return 2
    with sender:
        if config.teleop.interactive:
            return _interactive(sender, config.teleop.rate_hz, sys.stdin.fileno())
        if config.teleop.action is None and config.command.speed_m_s is None and config.teleop.yaw_rate_rad_s is None \
                and config.command.mode is None:
            print("error: nothing to send: give an action (start, stop, estop, reset), "
                  "--speed/--yaw-rate/--mode, or --keys", file=sys.stderr)
            return 2
        try:
            sender.send(config.command.speed_m_s, config.teleop.yaw_rate_rad_s, config.command.mode,
                        config.teleop.action)
            if config.teleop.hold_s > 0:
                end, period = time.monotonic() + config.teleop.hold_s, 1.0 / config.teleop.rate_hz
                try:
                    while time.monotonic() < end:
                        time.sleep(period)
                        sender.send(config.command.speed_m_s, config.teleop.yaw_rate_rad_s, config.command.mode)
                finally:
                    sender.send(0.0, 0.0, action=Action.STOP)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
