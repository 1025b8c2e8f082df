"""The Redis job store: status and files under one key, TTLs, atomic updates, no resurrection."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from worker.jobstore import FILE_NAMES, KEY_PREFIX, JobGone, JobStore

PARAMS = {
    "mode": "simulate",
    "scale": 4,
    "model": "spline",
    "filename": "a.wav",
    "auto": False,
    "output_rate": "model",
    "input": {"rate": 16000, "channels": 1, "bandwidth_hz": None},
}


@pytest.fixture
def database_name():
    return "jobstore"


@pytest.fixture
def client(database) -> redis.Redis:
    return database.client


def test_create_stores_the_upload_and_a_queued_status(store):
    job_id = store.create(b"RIFF...", PARAMS)

    status = store.status(job_id)
    assert status == {
        "id": job_id,
        "state": "queued",
        "progress": {"stage": "queued", "percent": 0.0},
        "error": None,
        "params": {
            "mode": "simulate",
            "scale": 4,
            "model": "spline",
            "auto": False,
            "output_rate": "model",
        },
        "input": {"rate": 16000, "channels": 1, "bandwidth_hz": None},
        "timings": {
            "queued_s": None,
            "processing_s": None,
            "audio_s": None,
            "realtime_factor": None,
            "model_s": None,
            "model_realtime_factor": None,
            "device": None,
        },
        "metrics": None,
        "warnings": [],
        "files": ["input"],
    }
    assert store.file(job_id, "input") == b"RIFF..."
    assert store.meta(job_id)["filename"] == "a.wav"
    assert len(job_id) >= 16 and job_id != store.create(b"x", PARAMS)


def test_everything_about_a_job_is_one_key_with_the_ttl(store, client):
    job_id = store.create(b"abc", PARAMS)
    store.put_file(job_id, "superres.wav", b"out")

    assert client.keys("*") == [f"{KEY_PREFIX}{job_id}".encode()]
    ttl_ms = store.ttl_s * 1000
    assert ttl_ms - 10_000 < client.pttl(KEY_PREFIX + job_id) <= ttl_ms


def test_each_write_renews_the_ttl_so_results_outlive_the_job_by_a_full_ttl(store, client):
    job_id = store.create(b"abc", PARAMS)
    client.expire(KEY_PREFIX + job_id, 5)

    store.update(job_id, lambda s: s.update(state="running"))

    assert client.ttl(KEY_PREFIX + job_id) > store.ttl_s - 100


def test_an_expired_job_is_gone_and_a_late_worker_cannot_bring_it_back(client):
    store = JobStore(client, ttl_s=1)
    job_id = store.create(b"abc", PARAMS)
    time.sleep(1.3)

    assert store.status(job_id) is None
    assert store.file(job_id, "input") is None
    with pytest.raises(JobGone):
        store.update(job_id, lambda s: s.update(state="done"))
    with pytest.raises(JobGone):
        store.put_file(job_id, "superres.wav", b"late")
    assert client.dbsize() == 0


def test_unknown_jobs_and_file_names_read_as_missing(store):
    job_id = store.create(b"abc", PARAMS)

    assert store.status("no-such-job") is None
    assert store.file(job_id, "../../etc/passwd") is None
    assert store.file(job_id, "superres.wav") is None
    with pytest.raises(ValueError, match="unknown job file"):
        store.put_file(job_id, "evil.exe", b"x")


def test_put_file_lists_each_output_once(store):
    job_id = store.create(b"abc", PARAMS)
    for name in FILE_NAMES[1:]:
        store.put_file(job_id, name, name.encode())
    store.put_file(job_id, "superres.wav", b"again")

    assert store.status(job_id)["files"] == list(FILE_NAMES)
    assert store.file(job_id, "superres.wav") == b"again"


def test_concurrent_updates_are_not_lost(store):
    job_id = store.create(b"abc", PARAMS)

    def bump():
        for _ in range(25):
            store.update_meta(job_id, lambda m: m.update(attempts=m["attempts"] + 1))

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert store.meta(job_id)["attempts"] == 100


def test_delete_forgets_the_job(store, client):
    job_id = store.create(b"abc", PARAMS)
    store.delete(job_id)

    assert store.status(job_id) is None
    assert client.dbsize() == 0
