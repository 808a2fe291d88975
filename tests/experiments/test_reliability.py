"""Runs that survive kills and a second process: kill -9 at chosen points, rerun, compare.

Every run here is a real ``tf-lottery`` process on synthetic data with ``--deterministic``,
so a resumed run must end with the very weights of an uninterrupted one. The kill points
are the crash points of :mod:`tf_lottery.core.faults`.
"""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

ARGS = ["--dataset=synthetic", "--train_size=0", "--val_size=64", "--length=2ep", "--lr_drops=", "--batch_size=64",
        "--num_blocks=1", "--latency_batch_sizes=1", "--memory_batch_size=8", "--deterministic"]


def _run(runs_dir, *extra, crash_at=None, wait=True):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    env.pop("TF_LOTTERY_CRASH_AT", None)
    if crash_at:
        env["TF_LOTTERY_CRASH_AT"] = crash_at
    command = [sys.executable, "-m", "tf_lottery.cli", *ARGS, *extra, f"--runs_dir={runs_dir}"]
    if not wait:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    # far above the worst case on a busy machine (a run takes about a minute idle): a limit, never a timing
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600)


def _weights(path):
    found = {}
    with h5py.File(path) as handle:
        handle.visititems(lambda k, v: found.__setitem__(k, v[()]) if isinstance(v, h5py.Dataset) else None)
    return found


def _folder(runs_dir, prefix):
    (folder,) = glob.glob(os.path.join(runs_dir, f"{prefix}-*"))
    return folder


def _leftovers(runs_dir):
    """Temporaries, resume states and partial exports: what must not survive a finished rerun."""
    found = []
    for parent, folders, files in os.walk(runs_dir):
        for name in folders + files:
            if name.startswith((".tmp-", ".old-", "resume_")):
                found.append(os.path.join(parent, name))
    return found


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory):
    runs = tmp_path_factory.mktemp("unbroken")
    result = _run(runs)
    assert result.returncode == 0, result.stderr[-3000:]
    return runs


def _assert_same_as_unbroken(runs, unbroken):
    mine = json.load(open(os.path.join(_folder(runs, "init_ticket"), "result.json")))
    theirs = json.load(open(os.path.join(_folder(unbroken, "init_ticket"), "result.json")))
    for side in ("dense", "ticket"):
        assert (mine[side]["train"]["epochs"], mine[side]["train"]["steps"]) == (
            theirs[side]["train"]["epochs"], theirs[side]["train"]["steps"])
        assert len(mine[side]["train"]["timing"]["epoch_seconds"]) == 2
    assert mine["ticket"]["removed"] == theirs["ticket"]["removed"]
    for prefix, name in (("dense", "dense"), ("init_ticket", "ticket")):
        history = open(os.path.join(_folder(runs, prefix), f"history_{name}.csv")).read().splitlines()
        assert [line.split(",")[0] for line in history] == ["epoch", "0", "1"]  # each epoch once
        a = _weights(os.path.join(_folder(runs, prefix), f"{name}_final.weights.h5"))
        b = _weights(os.path.join(_folder(unbroken, prefix), f"{name}_final.weights.h5"))
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{prefix} {key}")
    for prefix, name in (("dense", "dense"), ("init_ticket", "ticket")):
        assert os.path.exists(os.path.join(_folder(runs, prefix), "export", name, "metadata.json"))
    assert _leftovers(runs) == []
    return mine


# 7 batches an epoch, 2 epochs: batch 10 is inside the dense network's second epoch, batch 24
# inside the ticket's; checkpoint 2 is the dense network's last, 3 the ticket's first.
KILLS_FAST = ["batch:10"]  # the default suite; `make test-slow` kills at every point
KILLS_SLOW = ["checkpoint:2", "scoring", "batch:24", "checkpoint:3", "trained:1", "trained:2", "export:1", "export:2"]


@pytest.mark.parametrize("crash_at", KILLS_FAST + [pytest.param(k, marks=pytest.mark.slow) for k in KILLS_SLOW])
def test_a_run_killed_at_any_point_finishes_as_if_never_killed(crash_at, unbroken, tmp_path):
    killed = _run(tmp_path, crash_at=crash_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    rerun = _run(tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    record = _assert_same_as_unbroken(tmp_path, unbroken)
    if crash_at in SESSIONS:  # the resumed training says so, and its energy cannot be complete
        side, sessions = SESSIONS[crash_at]
        assert record[side]["train"]["timing"]["sessions"] == sessions
        # Even with no epoch left to train (a kill between the last epoch and the final weights): the
        # finishing session's tracker saw a fraction of a second, never a figure for the training.
        assert record[side]["energy"]["status"] == "unavailable"
        assert record[side]["energy"].get("energy_kwh") is None
        assert "interrupted and resumed" in record[side]["energy"]["reason"]


def test_a_dense_run_killed_after_its_rewind_step_keeps_the_same_theta_k(tmp_path):
    """The kill lands at batch 5 of the first epoch, after θ_3 was saved and before the epoch's
    checkpoint: the rerun trains that epoch again, saves θ_3 again, and the ticket ends as an
    unbroken run's does."""
    lottery = ["--experiment=lottery", "--criterion=expectabs", "--rewind_step=3", "--export=false"]
    unbroken, killed = tmp_path / "unbroken", tmp_path / "killed"
    assert _run(unbroken, *lottery).returncode == 0
    first = _run(killed, *lottery, crash_at="batch:5")
    assert first.returncode == -signal.SIGKILL, first.stderr[-2000:]
    assert os.path.exists(os.path.join(_folder(killed, "dense"), "theta_step_3.weights.h5"))
    rerun = _run(killed, *lottery)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    for prefix, name in (("dense", "theta_step_3"), ("dense", "dense_final"), ("lottery", "ticket_final")):
        a = _weights(os.path.join(_folder(killed, prefix), f"{name}.weights.h5"))
        b = _weights(os.path.join(_folder(unbroken, prefix), f"{name}.weights.h5"))
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name} {key}")
    record = json.load(open(os.path.join(_folder(killed, "lottery"), "result.json")))
    assert record["rewind"]["step"] == 3 and record["ticket"]["train"]["steps"] == 2 * 7 - 3


# Which training a kill interrupts, and in how many sessions its epochs were trained: a kill
# while the first checkpoint is written leaves nothing to resume (1 session), one after the
# last epoch leaves nothing to train (the epochs all belong to the first session).
SESSIONS = {"batch:10": ("dense", 2), "checkpoint:2": ("dense", 2), "batch:24": ("ticket", 2),
            "checkpoint:3": ("ticket", 1), "trained:1": ("dense", 1), "trained:2": ("ticket", 1)}


@pytest.mark.slow
def test_two_processes_on_one_dense_run(tmp_path):
    """grasp and snip of one seed at once: the dense network is trained once, and both runs use it."""
    first = _run(tmp_path, "--criterion=grasp", wait=False)
    second = _run(tmp_path, "--criterion=snip", wait=False)
    outputs = [p.communicate(timeout=3600) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], [o[1][-2000:] for o in outputs]
    dense = _folder(tmp_path, "dense")
    history = open(os.path.join(dense, "history_dense.csv")).read().splitlines()
    assert [line.split(",")[0] for line in history] == ["epoch", "0", "1"]
    results = [json.load(open(os.path.join(f, "result.json"))) for f in glob.glob(str(tmp_path / "init_ticket-*"))]
    assert len(results) == 2 and results[0]["dense"] == results[1]["dense"]
    assert "waiting for" in outputs[0][0] + outputs[1][0]  # one of them said what it waited for
    assert _leftovers(tmp_path) == []


@pytest.mark.slow
def test_a_second_process_can_refuse_to_wait(tmp_path):
    first = _run(tmp_path, wait=False)
    deadline = time.time() + 300
    while not glob.glob(str(tmp_path / ".locks" / "init_ticket-*.owner")) and time.time() < deadline:
        time.sleep(0.2)
    second = _run(tmp_path, "--nowait_for_lock")
    first.communicate(timeout=3600)
    assert second.returncode == 2 and "Traceback" not in second.stderr
    assert "is in use by process" in second.stderr and "--nowait_for_lock" in second.stderr
    assert first.returncode == 0


def _mount_tmpfs(path, size):
    path.mkdir(exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    return done.returncode == 0


def test_a_full_disk_is_one_clear_line_and_the_rerun_finishes(tmp_path):
    disk = tmp_path / "disk"
    if os.geteuid() != 0 or not _mount_tmpfs(disk, "3M"):
        pytest.skip("needs root and tmpfs mounts to make a small disk")
    try:
        full = _run(disk / "runs")
        assert full.returncode == 2, full.stderr[-2000:]
        lines = [line for line in full.stderr.splitlines() if line.startswith("tf-lottery: error:")]
        assert len(lines) == 1 and "no space left on the device" in lines[0] and "Traceback" not in full.stderr
        subprocess.run(["mount", "-o", "remount,size=300M", str(disk)], check=True)
        rerun = _run(disk / "runs")
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        assert _leftovers(disk / "runs") == []
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)
