"""`make run`: the Procfile's web and worker under a supervisor that restarts what dies, plus a
private Redis (password, memory cap, AOF in var/) when no REDIS_URL is given."""

from __future__ import annotations

import argparse
import fcntl
import os
import secrets
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

from worker.local import REPO, free_port, redis_command, wait_for_redis
from worker.supervisor import Supervisor, read_procfile

EMBEDDED_PORT = 6390
# The embedded Redis's memory cap (EMBEDDED_REDIS_MAXMEMORY): past it, writes are refused, so an
# upload is turned away rather than a queued job evicted.
EMBEDDED_MAXMEMORY = "1gb"


def var_dir(env: dict[str, str]) -> Path:
    """Where this checkout's run keeps its state (SUPERRES_VAR, default var/): Redis data, the
    generated secrets and the lock that lets one `make run` at a time use them."""
    return Path(env.get("SUPERRES_VAR") or REPO / "var")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m worker.serve", description=__doc__)
    parser.add_argument(
        "--redis",
        action="store_true",
        help="be the Procfile's `redis` process: run redis-server on REDIS_URL's port",
    )
    args = parser.parse_args(argv)
    env = dict(os.environ)
    if args.redis:
        exec_redis(env["REDIS_URL"], var_dir(env) / "redis")
    lock = hold_lock(var_dir(env))
    try:
        sys.exit(supervise(prepare_env(env)))
    finally:
        lock.close()


def hold_lock(var: Path):
    """Lock var/ for this launcher's lifetime; a second one in the same checkout is refused."""
    var.mkdir(parents=True, exist_ok=True)
    lock = open(var / "run.lock", "a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        sys.exit(
            f"error: another `make run` is already using {var} (pid {holder}); stop it first, "
            "or give this one its own state with SUPERRES_VAR=/some/other/dir"
        )
    lock.seek(0)
    lock.truncate()
    lock.write(str(os.getpid()))
    lock.flush()
    return lock


def prepare_env(env: dict[str, str]) -> dict[str, str]:
    """The environment the processes share: SECRET_KEY, and REDIS_URL (with `_EMBEDDED` set when
    the launcher must run that Redis itself)."""
    env = dict(env)
    var = var_dir(env)
    if not env.get("SECRET_KEY"):
        env["SECRET_KEY"] = kept_secret(var / "secret_key")
    if not env.get("REDIS_URL"):
        port = int(env.get("EMBEDDED_REDIS_PORT") or EMBEDDED_PORT)
        if _in_use(port):
            port = free_port()
        # A password: every local process could otherwise read every upload.
        password = kept_secret(var / "redis_password")
        env["REDIS_URL"] = f"redis://:{password}@127.0.0.1:{port}/0"
        env["_EMBEDDED"] = "1"
        print(f"no REDIS_URL: starting a private Redis on port {port} (data in {var / 'redis'})")
    else:
        print(f"using the Redis at {urlsplit(env['REDIS_URL']).hostname}")
    return env


def supervise(env: dict[str, str]) -> int:
    """Run the Procfile's redis (when embedded), web and worker until Ctrl-C, restarting any that
    dies and leaving the others running."""
    names = (["redis"] if env.pop("_EMBEDDED", None) else []) + ["web", "worker"]

    def ready(name: str) -> None:
        if name == "redis":
            wait_for_redis(env["REDIS_URL"], timeout_s=60)

    commands = read_procfile(REPO / "Procfile")
    return Supervisor(commands, names, env, REPO, ready).run()


def exec_redis(url: str, data_dir: Path) -> None:
    """Replace this process with redis-server on `url`'s port, appending every write under var/.

    The append-only file means jobs queued when the app stopped are still queued when it starts.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    parts = urlsplit(url)
    command = redis_command(
        parts.port or 6379,
        data_dir,
        appendonly=True,
        password=parts.password,
        maxmemory=os.environ.get("EMBEDDED_REDIS_MAXMEMORY", EMBEDDED_MAXMEMORY),
    )
    os.execv(command[0], command)


def kept_secret(path: Path) -> str:
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
