"""A real multi-process run on this machine: two processes on 127.0.0.1 joined by
`jax.distributed.initialize` (gloo CPU collectives, through `hjax.distributed.initialize`), two
simulated devices each, against one process with four simulated devices.

Two launches of tests/multiprocess/worker.py, side by side, serve every test (fixture `runs`):
  A. one process, 4 devices: the reference run (4 epochs); a 2-epoch run directory `one_half`;
     then, once B has written it, `two_half` resumed to 4 epochs;
  B. two processes, 2 devices each: the same 4 epochs into `two_dir`; a 2-epoch `two_half`;
     then, once A has written it, `one_half` resumed to 4 epochs; then a long run, during which
     process 1 is killed and process 0 is timed.
Side by side, A's compile overlaps B's: the file stays well inside CI's time on 2 cores.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hjax import distributed

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "multiprocess" / "worker.py"
CONFIG = dict(num_envs=8, num_epochs=4, chunk_epochs=2, grad_steps_per_epoch=4, hidden_sizes=[16, 16],
              batch_size=32, buffer_episodes=16, num_eval_envs=8, data_shards=4)
TIMEOUT = 10  # the distributed bound (seconds) given to both processes of B
LONG_EPOCHS = 10**6
LAUNCH_LIMIT = 400  # seconds; a launch that takes longer has hung
COMPARED = ("loss/critic", "loss/actor", "q/mean", "train/final_distance", "eval/final_distance",
            "eval/mean_distance", "env_steps", "grad_steps")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _job(out: Path, run_dir=None, resume=None, after=None, **overrides) -> dict:
    return {"config": {**CONFIG, **overrides}, "out": str(out), "run_dir": run_dir and str(run_dir),
            "resume": resume and str(resume), "after": after and str(after)}


def _start(jobs: list[dict], watch: Path, log: Path, devices: int, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONUNBUFFERED": "1",
           "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}".strip()}
    cmd = [sys.executable, str(WORKER), "--jobs", json.dumps(jobs), "--watch", str(watch), *extra]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)


def _load(prefix: Path) -> tuple[dict, dict]:
    with np.load(f"{prefix}.npz") as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, json.loads(Path(f"{prefix}.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("multiprocess")
    logs = {name: tmp / f"{name}.log" for name in ("A", "B0", "B1")}
    one = _start([_job(tmp / "ref"), _job(tmp / "one_half", run_dir=tmp / "one_half_dir", num_epochs=2),
                  _job(tmp / "one_resumed", resume=tmp / "two_half_dir", after=tmp / "two_half.p0.json")],
                 tmp, logs["A"], 4)
    port = _free_port()
    jobs = [_job(tmp / "two", run_dir=tmp / "two_dir"),
            _job(tmp / "two_half", run_dir=tmp / "two_half_dir", num_epochs=2),
            _job(tmp / "two_resumed", resume=tmp / "one_half_dir", after=tmp / "one_half.p0.json"),
            _job(tmp / "long", num_epochs=LONG_EPOCHS)]
    two = [_start(jobs, tmp, logs[f"B{i}"], 2, "--num-processes", "2", "--process-id", str(i),
                  "--port", str(port), "--timeout", str(TIMEOUT)) for i in range(2)]
    procs = [one, *two]
    try:
        deadline = time.monotonic() + LAUNCH_LIMIT
        marker = f"epoch 4/{LONG_EPOCHS} "  # process 0 reports the long run: B's other jobs are done
        while marker not in logs["B0"].read_text():
            assert all(p.poll() in (None, 0) for p in procs), "\n".join(log.read_text()[-3000:] for log in logs.values())
            assert time.monotonic() < deadline, f"launch B did not reach its long run in {LAUNCH_LIMIT} s"
            time.sleep(0.2)
        two[1].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        try:
            two[0].wait(timeout=TIMEOUT + 60)
        except subprocess.TimeoutExpired:
            pass
        survivor = {"seconds": time.monotonic() - killed, "returncode": two[0].poll(), "log": logs["B0"].read_text()}
        assert one.wait(timeout=max(deadline - time.monotonic(), 1)) == 0, logs["A"].read_text()[-4000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return {"tmp": tmp, "survivor": survivor, "logs": {k: v.read_text() for k, v in logs.items()}}


def _assert_same_run(a: dict, b: dict) -> None:
    for name in COMPARED:
        np.testing.assert_allclose(a[name].astype(float), b[name].astype(float), rtol=2e-4, atol=2e-5, err_msg=name)
    critic = sorted(k for k in a if k.startswith("critic"))
    assert critic and critic == sorted(k for k in b if k.startswith("critic"))
    for k in critic:
        np.testing.assert_allclose(a[k], b[k], rtol=2e-4, atol=2e-5, err_msg=k)


def test_two_processes_with_two_devices_each_equal_one_process_with_four(runs):
    ref, info = _load(runs["tmp"] / "ref.p0")
    assert info["process_count"] == 1 and info["device_count"] == 4
    assert ref["env_steps"][-1] == 4 * 8 * 50 and len(set(ref["loss/critic"].tolist())) == 4
    for i in range(2):
        two, info = _load(runs["tmp"] / f"two.p{i}")
        assert (info["process_index"], info["process_count"], info["device_count"], info["local_device_count"]) \
            == (i, 2, 4, 2)
        _assert_same_run(two, ref)


def test_checkpoints_cross_between_two_processes_and_one(runs):
    ref, _ = _load(runs["tmp"] / "ref.p0")
    for i in range(2):  # written by one process, resumed by two
        resumed, info = _load(runs["tmp"] / f"two_resumed.p{i}")
        assert info["process_count"] == 2
        _assert_same_run(resumed, ref)
    resumed, info = _load(runs["tmp"] / "one_resumed.p0")  # written by two processes, resumed by one
    assert info["process_count"] == 1
    _assert_same_run(resumed, ref)


def test_only_process_zero_writes_config_metrics_and_plots(runs):
    tmp = runs["tmp"]
    writes = [set(_load(tmp / f"two.p{i}")[1]["writes"]) for i in range(2)]
    # The audit hook saw each process write its own results file (so it watched process 1 too).
    assert "two.p0.npz" in writes[0] and "two.p1.npz" in writes[1]
    run_files = {"config.json", "metrics.csv", "curves.png"}
    assert {f"two_dir/{name}" for name in run_files} <= writes[0]
    for name in run_files:
        assert (tmp / "two_dir" / name).stat().st_size > 0
    # Process 1 takes part in the checkpoints (orbax: its own shards' metadata) and writes nothing else.
    in_run_dir = {w for w in writes[1] if w.startswith("two_dir/")}
    assert in_run_dir and all(w.startswith("two_dir/checkpoints/") for w in in_run_dir), sorted(in_run_dir)
    assert not any(w.startswith("two_dir/checkpoints/") and "process_1" in w for w in writes[0])
    assert "epoch 4/4 " in runs["logs"]["B0"] and "epoch" not in runs["logs"]["B1"]  # progress: process 0 only
    rows = (tmp / "two_dir" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + 4  # header + one row per epoch, written once


def test_a_killed_process_ends_the_other_within_the_bound(runs):
    survivor = runs["survivor"]
    assert survivor["returncode"] is not None, f"process 0 still running {survivor['seconds']:.0f} s after the kill"
    assert survivor["returncode"] != 0
    assert survivor["seconds"] < TIMEOUT + 30, survivor["seconds"]
    print(f"process 0 exited {survivor['seconds']:.1f} s after process 1 was killed (bound {TIMEOUT} s)")
    assert "stopped sending heartbeats" in survivor["log"] or "another task died" in survivor["log"], \
        survivor["log"][-3000:]


def test_timeout_is_validated_and_read_from_the_environment(monkeypatch):
    monkeypatch.delenv(distributed.ENV_VAR, raising=False)
    assert distributed.resolve_timeout() == distributed.DEFAULT_TIMEOUT
    assert distributed.resolve_timeout(2.5) == 3
    monkeypatch.setenv(distributed.ENV_VAR, "40")
    assert distributed.resolve_timeout() == 40 and distributed.resolve_timeout(7) == 7
    for bad in (0, -1, "soon", float("nan"), True):
        with pytest.raises(ValueError, match="invalid timeout=.*allowed: a number of seconds > 0"):
            distributed.resolve_timeout(bad)
    monkeypatch.setenv(distributed.ENV_VAR, "-5")
    with pytest.raises(ValueError, match="invalid HJAX_DISTRIBUTED_TIMEOUT='-5'"):
        distributed.resolve_timeout()


def test_cli_distributed_timeout_is_checked_before_joining(capsys):
    from hjax import cli

    assert cli.main(["train", "--distributed-timeout", "5"]) == 2
    assert "--distributed-timeout needs --distributed" in capsys.readouterr().err
    assert cli.main(["train", "--distributed", "--distributed-timeout", "-1"]) == 2
    assert "invalid --distributed-timeout=-1.0; allowed: a number of seconds > 0" in capsys.readouterr().err
