"""The persistent compile cache and the traced programs kept beside it: on by default in a
per-user folder, switchable off, never serving another config's program. Each run is a fresh
process, as a second CLI run would be."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hjax import compile_cache, program_cache

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(num_envs=4, num_epochs=2, chunk_epochs=2, grad_steps_per_epoch=2, hidden_sizes=[8],
            batch_size=16, buffer_episodes=8, num_eval_envs=4)
PROGRAM = """
import json, sys
import hjax
from hjax import compile_cache

if sys.argv[2] == "no-trace":  # building (tracing) the trainer fails: the program must come from disk
    def refuse(*args, **kwargs):
        raise AssertionError("traced although the program was saved")
    sys.modules["hjax.train"].make_trainer = refuse
config = hjax.Config(**json.loads(sys.argv[1]))
result = hjax.train(config, progress_bar=False, verbose=False)
folder = compile_cache.current_dir()
print(json.dumps({"dir": None if folder is None else str(folder),
                  "success": float(result.metrics["eval/success_rate"][-1]),
                  "q": result.metrics["q/mean"].tolist(), "loss": result.metrics["loss/critic"].tolist()}))
"""


def _run(env: dict, trace: bool = True, **overrides) -> dict:
    out = subprocess.run([sys.executable, "-c", PROGRAM, json.dumps({**TINY, **overrides}),
                          "trace" if trace else "no-trace"], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _env(tmp_path: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_COMPILATION_CACHE", "JAX_PERSISTENT", "HJAX_"))}
    env.update(XDG_CACHE_HOME=str(tmp_path / "xdg"), JAX_PLATFORMS="cpu", **extra)
    return env


def _entries(folder: Path) -> set[str]:
    return {p.name for p in folder.glob("*-cache")}


def _programs(folder: Path) -> set[str]:
    return {p.name for p in (folder / program_cache.FOLDER).glob("*.pkl")}


def test_default_folder_follows_xdg_and_the_override(tmp_path, monkeypatch):
    monkeypatch.delenv(compile_cache.ENV_DIR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert compile_cache.default_dir() == tmp_path / "x" / "hjax" / "xla"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert compile_cache.default_dir() == Path.home() / ".cache" / "hjax" / "xla"
    monkeypatch.setenv(compile_cache.ENV_DIR, str(tmp_path / "mine"))
    assert compile_cache.default_dir() == tmp_path / "mine"
    for off in ("0", "off", "False", "no"):
        monkeypatch.setenv(compile_cache.ENV_SWITCH, off)
        assert not compile_cache.enabled_by_env()
    monkeypatch.setenv(compile_cache.ENV_SWITCH, "1")
    assert compile_cache.enabled_by_env()


def test_on_by_default_reused_by_a_second_process_and_new_for_a_changed_config(tmp_path):
    env = _env(tmp_path)
    first = _run(env)
    folder = tmp_path / "xdg" / "hjax" / "xla"
    assert first["dir"] == str(folder)
    after_first = _entries(folder)
    assert after_first, "the first run wrote nothing to the cache"
    programs = _programs(folder)
    assert len(programs) == 1, "the first run kept no traced program"
    second = _run(env, trace=False)  # fails if it traces: served from disk
    assert _entries(folder) == after_first, "the same config compiled anew instead of loading from the cache"
    assert _programs(folder) == programs
    for name in ("success", "q", "loss"):  # a cached program computes the same bits
        assert second[name] == first[name], name
    _run(env, hidden_sizes=[12])  # another program: must not be served the cached one
    assert _entries(folder) > after_first
    assert len(_programs(folder)) == 2


def test_switched_off_and_a_users_own_folder_kept(tmp_path):
    off = _run(_env(tmp_path, HJAX_COMPILE_CACHE="0"))
    assert off["dir"] is None
    assert not (tmp_path / "xdg" / "hjax").exists()  # neither compiled nor traced programs kept
    own = tmp_path / "own"
    mine = _run(_env(tmp_path, JAX_COMPILATION_CACHE_DIR=str(own)))
    assert mine["dir"] == str(own)
    assert _entries(own) and _programs(own) and not (tmp_path / "xdg" / "hjax").exists()
