"""Run a command while busy-loop processes keep every core loaded, as on a slow, shared machine.

    python scripts/under_load.py -- make test          # one hog per core
    python scripts/under_load.py --hogs 2 -- make test

Prints the command's wall time and exits with its status; the hogs are stopped however it ends.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

HOG = "while True: pass"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hogs", type=int, default=os.cpu_count() or 2, help="busy processes")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")

    hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(args.hogs)]
    started = time.monotonic()
    try:
        status = subprocess.call(command)
    finally:
        for hog in hogs:
            hog.send_signal(signal.SIGKILL)
            hog.wait()
    wall_s = time.monotonic() - started
    print(f"under_load: {args.hogs} hogs, exit {status}, {wall_s:.0f} s: {' '.join(command)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
