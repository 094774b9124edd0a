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

from hal.operator.base import MODES, Action, OperatorCommand
from hal.operator.keyboard import KEY_HELP, KeyDecoder
from hal.operator.network import TeleopSender

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="krabby-teleop", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("endpoint", help="the robot's operator endpoint, e.g. tcp://robot:5561")
    parser.add_argument("action", nargs="?", choices=[a.value for a in Action],
                        help="start, stop, estop or reset")
    parser.add_argument("--speed", type=float, help="forward speed command, m/s")
    parser.add_argument("--yaw-rate", dest="yaw_rate", type=float, help="yaw rate, rad/s (left +)")
    parser.add_argument("--mode", choices=MODES)
    parser.add_argument("--hold", type=float, default=0.0, metavar="S",
                        help="resend the command for S seconds, then stop (default: send once)")
    parser.add_argument("--keys", action="store_true", help="interactive: drive with the keys")
    parser.add_argument("--key-dir", dest="key_dir", default=os.environ.get("KRABBY_KEYS"),
                        help="this operator's key directory (krabby-keys add ... --role operator; "
                             "default $KRABBY_KEYS): the robot's endpoint admits operator keys only")
    parser.add_argument("--insecure", action="store_true",
                        help="connect without keys (a server run with --insecure)")
    parser.add_argument("--rate", type=float, default=10.0,
                        help="interactive: messages per second (default 10)")
    return parser


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
    args = build_parser().parse_args(argv)
    from hal.auth import AuthError, ClientKeys, is_network, secure_client_socket

    try:
        secure = None
        if args.key_dir:
            keys = ClientKeys.load(args.key_dir)
            secure = lambda socket: secure_client_socket(socket, keys)  # noqa: E731
        elif is_network(args.endpoint) and not args.insecure:
            raise AuthError("the operator endpoint admits operator keys only: pass --key-dir DIR "
                            "(krabby-keys add ROBOT_DIR NAME --role operator), or --insecure for "
                            "a server run with --insecure")
        sender = TeleopSender(args.endpoint, secure=secure)
    except Exception as exc:  # noqa: BLE001 - one line for the operator
        print(f"error: {args.endpoint}: {exc}", file=sys.stderr)
        return 2
    with sender:
        if args.keys:
            return _interactive(sender, args.rate, sys.stdin.fileno())
        if args.action is None and args.speed is None and args.yaw_rate is None \
                and args.mode is None:
            print("error: nothing to send: give an action (start, stop, estop, reset), "
                  "--speed/--yaw-rate/--mode, or --keys", file=sys.stderr)
            return 2
        try:
            sender.send(args.speed, args.yaw_rate, args.mode, args.action)
            if args.hold > 0:
                end, period = time.monotonic() + args.hold, 1.0 / args.rate
                try:
                    while time.monotonic() < end:
                        time.sleep(period)
                        sender.send(args.speed, args.yaw_rate, args.mode)
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
