"""Runs tests/multidevice on 4 simulated CPU devices (XLA_FLAGS must be set before JAX starts,
so in a fresh process), and checks the single-device layout here."""

import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np

import hjax

ROOT = Path(__file__).resolve().parents[1]


def test_multidevice_suite_on_four_simulated_devices():
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()}
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/multidevice"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert " passed" in out.stdout and "skipped" not in out.stdout, out.stdout[-2000:]


def test_data_shards_on_one_device_keep_each_shards_envs():
    cfg = hjax.Config(num_envs=8, num_epochs=1, grad_steps_per_epoch=2, hidden_sizes=(8,), batch_size=16,
                      buffer_episodes=16, num_eval_envs=4, data_shards=4)
    result = hjax.train(cfg, progress_bar=False)
    buf = result.state.buffer
    assert buf.data.observation.shape[:2] == (4, 4) and np.all(np.asarray(buf.size) == 2)
    assert jax.device_count() == 1 or result.state.buffer.data.observation.sharding is not None
