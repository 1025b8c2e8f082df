"""`make run`: the Procfile under honcho, plus a private Redis (AOF in var/) without REDIS_URL."""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

from worker.local import REPO, free_port, redis_command

DATA_DIR = REPO / "var" / "redis"
SECRET_FILE = REPO / "var" / "secret_key"
REDIS_PASSWORD_FILE = REPO / "var" / "redis_password"
EMBEDDED_PORT = 6390
# The embedded Redis's memory cap (EMBEDDED_REDIS_MAXMEMORY): past it, writes are refused, so an
# upload is turned away rather than a queued job evicted.
EMBEDDED_MAXMEMORY = "1gb"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m worker.serve", description=__doc__)
    parser.add_argument(
        "--redis",
        action="store_true",
        help="be the Procfile's `redis` process: run redis-server on REDIS_URL's port",
    )
    args = parser.parse_args(argv)
    if args.redis:
        exec_redis(os.environ["REDIS_URL"])
    else:
        exec_honcho(dict(os.environ))


def exec_honcho(env: dict[str, str]) -> None:
    """Replace this process with honcho running web + worker, and `redis` when we must own one.

    Both cases run the same Procfile, so a shared Redis and the embedded one take one code path.
    """
    processes = ["web", "worker"]  # web first: honcho gives the first process $PORT itself
    if not env.get("SECRET_KEY"):
        env["SECRET_KEY"] = _kept_secret(SECRET_FILE)
    if not env.get("REDIS_URL"):
        port = int(env.get("EMBEDDED_REDIS_PORT") or EMBEDDED_PORT)
        if _in_use(port):
            port = free_port()
        # A password: every local process could otherwise read every upload.
        password = _kept_secret(REDIS_PASSWORD_FILE)
        env["REDIS_URL"] = f"redis://:{password}@127.0.0.1:{port}/0"
        processes.append("redis")
        print(f"no REDIS_URL: starting a private Redis on port {port} (data in {DATA_DIR})")
    else:
        print(f"using the Redis at {env['REDIS_URL']}")
    honcho = str(Path(sys.executable).with_name("honcho"))
    os.chdir(REPO)
    os.execve(honcho, [honcho, "start", "--procfile", "Procfile", *processes], env)


def exec_redis(url: str) -> None:
    """Replace this process with redis-server on `url`'s port, appending every write under var/.

    The append-only file means jobs queued when the app stopped are still queued when it starts.
    """
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    parts = urlsplit(url)
    command = redis_command(
        parts.port or 6379,
        DATA_DIR,
        appendonly=True,
        password=parts.password,
        maxmemory=os.environ.get("EMBEDDED_REDIS_MAXMEMORY", EMBEDDED_MAXMEMORY),
    )
    os.execv(command[0], command)


def _kept_secret(path: Path) -> str:
    """A secret for local runs (SECRET_KEY, the Redis password): made once, kept in var/
    (owner-only) across restarts."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
        f.write(key)
    return key


def _in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


if __name__ == "__main__":
    main()
