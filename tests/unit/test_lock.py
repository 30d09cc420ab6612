"""The deploy lock's scripts, run for real against a temporary state dir (no Docker needed)."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest

from operations import release_commands as rc


def sh(command: str) -> tuple[int, str]:
    result = subprocess.run(command, shell=True, capture_output=True, text=True)
    return result.returncode, result.stdout + result.stderr


def holder(token: str, pid: int | None = None, host: str | None = None) -> dict[str, str]:
    return {
        "user": "alice",
        "host": host or socket.gethostname(),
        "pid": str(pid if pid is not None else os.getpid()),
        "time": "2026-12-04T16:00:00Z",
        "token": token,
    }


@pytest.fixture
def state_dir(tmp_path):
    return str(tmp_path / "state")


def test_acquire_creates_a_private_lock_recording_the_holder(state_dir):
    code, out = sh(rc.lock_acquire(state_dir, holder("t1")))
    assert code == 0 and "acquired" in out
    assert os.stat(state_dir).st_mode & 0o777 == 0o700
    lock = rc.lock_path(state_dir)
    assert os.stat(lock).st_mode & 0o777 == 0o700
    assert os.stat(f"{lock}/holder").st_mode & 0o777 == 0o600
    lines = open(f"{lock}/holder").read().splitlines()
    assert lines == [
        "user=alice", f"host={socket.gethostname()}", f"pid={os.getpid()}", "time=2026-12-04T16:00:00Z",
        "token=t1", "revision=unknown",
    ]  # fmt: skip


def test_a_second_deploy_fails_at_once_naming_the_holder(state_dir):
    sh(rc.lock_acquire(state_dir, holder("t1")))
    started = time.monotonic()
    code, out = sh(rc.lock_acquire(state_dir, holder("t2")))
    assert code == 1 and time.monotonic() - started < 2
    assert f"held by alice@{socket.gethostname()} (pid {os.getpid()}) since 2026-12-04T16:00:00Z" in out
    assert "token=t1" in open(f"{rc.lock_path(state_dir)}/holder").read()


def test_waits_for_the_lock_then_gives_up(state_dir):
    sh(rc.lock_acquire(state_dir, holder("t1")))
    started = time.monotonic()
    code, out = sh(rc.lock_acquire(state_dir, holder("t2"), wait_seconds=2))
    assert code == 1 and 2 <= time.monotonic() - started < 5


def test_waiting_deploy_gets_the_lock_when_it_is_released(state_dir):
    sh(rc.lock_acquire(state_dir, holder("t1")))
    waiter = subprocess.Popen(rc.lock_acquire(state_dir, holder("t2"), wait_seconds=10), shell=True,
                              stdout=subprocess.PIPE, text=True)
    time.sleep(1.2)
    assert sh(rc.lock_release(state_dir, "t1"))[0] == 0
    out, _ = waiter.communicate(timeout=10)
    assert waiter.returncode == 0 and "after waiting" in out


def test_release_removes_only_the_own_lock(state_dir):
    sh(rc.lock_acquire(state_dir, holder("t1")))
    code, out = sh(rc.lock_release(state_dir, "other"))
    assert code == 0 and "not held by this run" in out and os.path.isdir(rc.lock_path(state_dir))
    code, out = sh(rc.lock_release(state_dir, "t1"))
    assert code == 0 and "released" in out and not os.path.exists(rc.lock_path(state_dir))
    assert sh(rc.lock_release(state_dir, "t1"))[0] == 0  # idempotent


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_lock_of_a_gone_process_is_stale_but_broken_only_with_the_flag(state_dir):
    sh(rc.lock_acquire(state_dir, holder("t1", pid=dead_pid())))
    code, out = sh(rc.lock_acquire(state_dir, holder("t2")))
    assert code == 1 and "stale" in out and "break_stale_lock=true" in out
    code, out = sh(rc.lock_acquire(state_dir, holder("t2"), break_stale=True))
    assert code == 0 and "breaking the stale deploy lock" in out
    assert "token=t2" in open(f"{rc.lock_path(state_dir)}/holder").read()


def test_live_holder_is_never_broken(state_dir):
    sh(rc.lock_acquire(state_dir, holder("t1")))
    code, _ = sh(rc.lock_acquire(state_dir, holder("t2"), break_stale=True))
    assert code == 1


def test_pid_is_only_checked_for_a_holder_on_this_machine(state_dir):
    sh(rc.lock_acquire(state_dir, holder("t1", pid=dead_pid(), host="laptop-elsewhere")))
    code, _ = sh(rc.lock_acquire(state_dir, holder("t2"), break_stale=True))
    assert code == 1


def test_old_lock_is_stale_by_age(state_dir):
    sh(rc.lock_acquire(state_dir, holder("t1", host="laptop-elsewhere")))
    past = time.time() - 120
    os.utime(rc.lock_path(state_dir), (past, past))
    code, out = sh(rc.lock_acquire(state_dir, holder("t2"), stale_after_seconds=60))
    assert code == 1 and "longer than 60 s" in out
    code, _ = sh(rc.lock_acquire(state_dir, holder("t2"), stale_after_seconds=60, break_stale=True))
    assert code == 0


def test_records_the_revision_being_deployed(state_dir, tmp_path):
    origin = tmp_path / "origin"
    subprocess.run(["git", "init", "-q", "-b", "main", str(origin)], check=True)
    subprocess.run(["git", "-C", str(origin), "-c", "user.name=x", "-c", "user.email=x@x", "commit", "-q",
                    "--allow-empty", "-m", "x"], check=True)  # fmt: skip
    tip = subprocess.run(["git", "-C", str(origin), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True)
    sh(rc.lock_acquire(state_dir, holder("t1"), revision_of=(str(clone), "origin", "main")))
    assert f"revision={tip}" in open(f"{rc.lock_path(state_dir)}/holder").read()


def test_holder_values_cannot_inject_lines():
    with pytest.raises(ValueError):
        rc.lock_acquire("/tmp/x", {**holder("t1"), "user": "eve\ntoken=t2"})


def read_lock(state_dir: str) -> dict:
    code, out = sh(rc.read_lock(state_dir))
    assert code == 0
    return rc.parse_lock(out.splitlines())


def test_lock_state_reads_free_then_held_by_whom_then_the_generation_its_release_left(state_dir):
    assert read_lock(state_dir) == {"held": False, "generation": "", "holder": {}}
    sh(rc.lock_acquire(state_dir, holder("t1")))
    held = read_lock(state_dir)
    assert held["held"] and held["holder"]["token"] == "t1" and held["holder"]["user"] == "alice"
    sh(rc.lock_release(state_dir, "t1"))
    assert read_lock(state_dir) == {"held": False, "generation": "t1", "holder": {}}
    sh(rc.lock_release(state_dir, "t2"))  # not the holder: the generation stays
    assert read_lock(state_dir)["generation"] == "t1"


def test_a_deferred_take_is_refused_when_another_deploy_ran_since_the_inspection(state_dir):
    generation = read_lock(state_dir)["generation"]
    sh(rc.lock_acquire(state_dir, holder("t1")))
    sh(rc.lock_release(state_dir, "t1"))  # another deploy, between our inspection and our first change
    code, out = sh(rc.lock_acquire(state_dir, holder("t2"), expect_generation=generation))
    assert code == 1 and "another deploy ran on this server since this run inspected it" in out
    assert not os.path.exists(rc.lock_path(state_dir)), "the refused run must give the lock back"
    code, out = sh(rc.lock_acquire(state_dir, holder("t2"), expect_generation="t1"))
    assert code == 0 and "acquired" in out


def test_what_runs_under_the_lock_prints_after_the_acquired_line(state_dir):
    code, out = sh(rc.lock_acquire(state_dir, holder("t1"), then="echo under-the-lock"))
    assert code == 0 and out.splitlines()[0].startswith("acquired") and out.splitlines()[1:] == ["under-the-lock"]


def test_audit_and_release_appends_then_releases_even_when_the_append_fails(state_dir, tmp_path):
    sh(rc.lock_acquire(state_dir, holder("t1")))
    code, out = sh(rc.audit_and_release(state_dir, '{"result":"ok"}', "t1"))
    assert code == 0 and "released" in out and not os.path.exists(rc.lock_path(state_dir))
    assert open(rc.audit_path(state_dir)).read() == '{"result":"ok"}\n'
    sh(rc.lock_acquire(state_dir, holder("t2")))
    os.rename(rc.audit_path(state_dir), str(tmp_path / "moved"))
    os.mkdir(rc.audit_path(state_dir))  # the log cannot be appended to
    code, out = sh(rc.audit_and_release(state_dir, '{"result":"ok"}', "t2"))
    assert code == 1 and "could not append to" in out and not os.path.exists(rc.lock_path(state_dir))
