"""The persistent compile cache and the traced programs kept beside it: on by default in a
per-user folder, switchable off, never serving another config's program, never using a folder
that is not the user's alone (one warning). Each run is a fresh process, as a second CLI run
would be."""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import jax
import pytest

from hjax import compile_cache, program_cache

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(num_envs=4, num_epochs=2, chunk_epochs=2, grad_steps_per_epoch=2, hidden_sizes=[8],
            batch_size=16, buffer_episodes=8, num_eval_envs=4)
PROGRAM = """
import json, sys
import hjax
from hjax import compile_cache, program_cache

if sys.argv[2] == "no-trace":  # tracing (exporting) the programs fails: they must come from disk
    def refuse(*args, **kwargs):
        raise AssertionError("traced although the program was saved")
    program_cache.export = refuse
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
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "stderr": out.stderr}


def _env(tmp_path: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_COMPILATION_CACHE", "JAX_PERSISTENT", "HJAX_"))}
    env.update(XDG_CACHE_HOME=str(tmp_path / "xdg"), JAX_PLATFORMS="cpu", **extra)
    return env


def _entries(folder: Path) -> set[str]:
    return {p.name for p in folder.glob("*-cache")}


def _programs(folder: Path) -> set[str]:
    return {p.name for p in (folder / program_cache.FOLDER).glob(f"*{program_cache.SUFFIX}")}


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


@pytest.fixture
def jax_cache_settings():
    """Puts back JAX's cache settings after the test (each test warns about folders of its own)."""
    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
             "jax_compilation_cache_max_size")
    saved = {name: getattr(jax.config, name) for name in names}
    yield
    for name, value in saved.items():
        jax.config.update(name, value)


def _messages(caught) -> list[str]:
    return [str(w.message) for w in caught if "hjax: not using" in str(w.message)]


@pytest.mark.parametrize("mode", [0o777, 0o770], ids=oct)
def test_a_folder_writable_by_others_turns_the_cache_off_with_one_warning(tmp_path, monkeypatch,
                                                                         jax_cache_settings, mode):
    shared, given = tmp_path / "shared", tmp_path / "given"
    for folder in (shared, given):
        folder.mkdir()
        os.chmod(folder, mode)
    mine = tmp_path / "mine"
    monkeypatch.delenv(compile_cache.ENV_SWITCH, raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compile_cache.enable(mine)
        assert compile_cache.current_dir() == mine
        for _ in range(2):  # asked twice: one warning
            assert compile_cache.enable(shared) == shared
            assert compile_cache.current_dir() is None  # the cache is off, not left at `mine`
        monkeypatch.setenv(compile_cache.ENV_DIR, str(shared))  # the same folder through the variable
        assert compile_cache.enable_default() is None and compile_cache.current_dir() is None
        jax.config.update("jax_compilation_cache_dir", str(given))  # a folder the user gave JAX
        for _ in range(2):
            assert compile_cache.enable_default() is None
            assert compile_cache.current_dir() is None
            jax.config.update("jax_compilation_cache_dir", str(given))
    messages = _messages(caught)
    assert len(messages) == 2, messages  # one per folder
    reason = f"writable by group or others (mode {oct(mode)})"
    assert f"compile cache at {shared}: it is {reason}; chmod go-w it or set HJAX_COMPILE_CACHE_DIR" in messages[0]
    assert f"compile cache at {given}: it is {reason}" in messages[1]
    assert "JAX_COMPILATION_CACHE_DIR" in messages[1]
    assert not list(shared.iterdir()) and not list(given.iterdir())


def test_a_private_folder_is_created_0o700_and_used(tmp_path, monkeypatch, jax_cache_settings):
    created = tmp_path / "new" / "xla"
    existing = tmp_path / "existing"
    existing.mkdir()
    os.chmod(existing, 0o755)  # readable by others is fine: only writing is theirs to not do
    given = tmp_path / "given" / "xla"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning at all
        assert compile_cache.enable(created) == created and compile_cache.current_dir() == created
        assert (created.stat().st_mode & 0o777) == 0o700
        assert compile_cache.enable(existing) == existing and compile_cache.current_dir() == existing
        jax.config.update("jax_compilation_cache_dir", str(given))  # missing: created 0o700 as well
        assert compile_cache.enable_default() == given and (given.stat().st_mode & 0o777) == 0o700
        compile_cache.disable()
        monkeypatch.setenv(compile_cache.ENV_DIR, str(tmp_path / "env"))
        monkeypatch.delenv(compile_cache.ENV_SWITCH, raising=False)
        assert compile_cache.enable_default() == tmp_path / "env" == compile_cache.current_dir()


def test_a_folder_of_another_user_is_not_used(tmp_path, monkeypatch, jax_cache_settings):
    folder = tmp_path / "theirs"
    folder.mkdir(mode=0o700)
    uid = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: uid + 1)
    with pytest.warns(UserWarning, match=f"at {folder}: it is owned by uid {uid}, not by you \\(uid {uid + 1}\\)"):
        compile_cache.enable(folder)
    assert compile_cache.current_dir() is None
    monkeypatch.delattr(os, "getuid")  # no POSIX ownership (Windows): the folder is not checked
    os.chmod(folder, 0o777)
    assert compile_cache.untrusted_reason(folder) is None


def test_a_run_does_not_use_a_shared_folder(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    result = _run(_env(tmp_path, HJAX_COMPILE_CACHE_DIR=str(shared)))
    assert result["dir"] is None
    assert not list(shared.iterdir())  # neither executables nor traced programs written
    assert result["stderr"].count("hjax: not using") == 1, result["stderr"][-3000:]
    assert f"compile cache at {shared}: it is writable by group or others (mode 0o777)" in result["stderr"]
