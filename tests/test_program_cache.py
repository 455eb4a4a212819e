"""Traced programs kept on disk (hjax/program_cache.py): the key covers what shapes a program, a
loaded program computes what the traced one and a plain `jax.jit` of the same functions compute,
and a broken or unwritable folder costs a trace, never a wrong program. A toy init and chunk
stand in for the trainer (the full round trip through `hjax.train` is in test_compile_cache.py)."""

import os
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hjax
from hjax import compile_cache, program_cache
from hjax.counter import Counter

KEYS = jax.random.PRNGKey(3)


def init_fn(key):
    w = jax.random.normal(key, (4, 3))
    return {"w": w, "steps": Counter.create(0), "none": None}


def chunk_fn(state):
    def epoch(s, _):
        w = s["w"] - 0.1 * jnp.tanh(s["w"] @ s["w"].T) @ s["w"]
        return {"w": w, "steps": s["steps"].add(7), "none": None}, {"norm": jnp.linalg.norm(w), "steps": s["steps"]}
    return jax.lax.scan(epoch, state, None, length=3)


def run(init, chunk):
    state = init(KEYS)
    return chunk(state)


class OwnEnv:  # an env class outside the `hjax.envs` package
    pass


def _assert_same(a, b):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert jax.tree.structure(a) == jax.tree.structure(b) and len(la) == len(lb)
    for x, y in zip(la, lb):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_exported_programs_compute_what_plain_jit_computes_and_donate():
    programs = program_cache.export(init_fn, chunk_fn, KEYS)
    init, chunk = programs.compile()
    state = init(KEYS)
    leaves = jax.tree.leaves(state)
    out = chunk(state)
    assert all(x.is_deleted() for x in leaves)  # the chunk donates its input state
    reference = run(jax.jit(init_fn), jax.jit(chunk_fn))  # the independent reference
    assert jax.tree.structure(out) == jax.tree.structure(reference)
    for x, y in zip(jax.tree.leaves(out), jax.tree.leaves(reference)):
        np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=1e-6, atol=1e-6)
    assert int(out[0]["steps"].lo) == 21 and out[1]["norm"].shape == (3,)


def test_saved_programs_load_and_compute_the_same_bits(tmp_path):
    traced = program_cache.export(init_fn, chunk_fn, KEYS)
    path = program_cache.save("k1", tmp_path, traced)
    assert path == tmp_path / "k1.pkl" and path.stat().st_size > 0
    assert not list(tmp_path.glob("*.tmp"))  # written atomically, nothing left behind
    loaded = program_cache.load("k1", tmp_path)
    _assert_same(run(*traced.compile()), run(*loaded.compile()))
    assert program_cache.load("k2", tmp_path) is None  # nothing saved under another key


def test_programs_for_traces_once_then_loads(tmp_path, monkeypatch):
    monkeypatch.setattr(program_cache, "folder", lambda: tmp_path)
    builds = []

    def build():
        builds.append(1)
        return init_fn, chunk_fn

    program = (("env", "point_mass"), ("hidden_sizes", (8,)))
    env_class = type(hjax.envs.make("point_mass"))
    first, how = program_cache.programs_for(program, env_class, build, KEYS)
    assert how == "traced" and len(builds) == 1
    second, how = program_cache.programs_for(program, env_class, build, KEYS)
    assert how == "loaded" and len(builds) == 1
    _assert_same(run(*first.compile()), run(*second.compile()))
    _, how = program_cache.programs_for(program + (("x", 1),), env_class, build, KEYS)  # another program
    assert how == "traced" and len(builds) == 2 and len(list(tmp_path.glob("*.pkl"))) == 2
    _, how = program_cache.programs_for(program, OwnEnv, build, KEYS)  # a user's env: never kept
    assert how == "traced, not kept" and len(builds) == 3 and len(list(tmp_path.glob("*.pkl"))) == 2
    monkeypatch.setattr(program_cache, "folder", lambda: None)  # the cache switched off
    _, how = program_cache.programs_for(program, env_class, build, KEYS)
    assert how == "traced, not kept" and len(builds) == 4


def test_key_covers_sources_versions_device_and_flags():
    env_class = type(hjax.envs.make("point_mass"))
    program = (("env", "point_mass"),)
    environment = program_cache.environment()
    key = program_cache.program_key(program, env_class, environment)
    assert key == program_cache.program_key(program, env_class, program_cache.environment())  # stable
    assert program_cache.program_key(program, OwnEnv, environment) is None
    assert program_cache.program_key(program + (("seeds", 2),), env_class, environment) != key
    changed = [
        {**environment, "sources": "0" * 64},
        {**environment, "versions": {**environment["versions"], "jax": "0.0.1"}},
        {**environment, "versions": {**environment["versions"], "mujoco": "0.0.1"}},
        {**environment, "backend": "gpu"},
        {**environment, "device_kind": "another"},
        {**environment, "devices": environment["devices"] + 1},
        {**environment, "xla_flags": "--xla_force_host_platform_device_count=4"},
        {**environment, "jax_config": environment["jax_config"] + [("jax_enable_x64", "True")]},
    ]
    keys = {program_cache.program_key(program, env_class, e) for e in changed}
    assert key not in keys and len(keys) == len(changed)
    assert all(name in environment["versions"] for name in ("jax", "jaxlib", "flax", "brax", "mujoco"))


def test_folder_follows_the_compile_cache_and_its_own_switch(monkeypatch, tmp_path):
    monkeypatch.setattr(compile_cache, "current_dir", lambda: tmp_path)
    monkeypatch.delenv(program_cache.ENV_SWITCH, raising=False)
    assert program_cache.folder() == tmp_path / "hjax-programs"
    monkeypatch.setenv(program_cache.ENV_SWITCH, "0")
    assert program_cache.folder() is None
    monkeypatch.setenv(program_cache.ENV_SWITCH, "1")
    monkeypatch.setattr(compile_cache, "current_dir", lambda: None)  # the XLA cache off: both off
    assert program_cache.folder() is None


def test_source_digest_reads_every_module():
    import hjax
    assert program_cache.source_digest() == program_cache.source_digest()
    assert len(list(Path(hjax.__file__).parent.glob("*.py"))) > 10  # the packages it hashes exist


def test_unreadable_files_are_traced_anew(tmp_path):
    (tmp_path / "bad.pkl").write_bytes(b"not a pickle")
    with pytest.warns(UserWarning, match="bad.pkl is unreadable"):
        assert program_cache.load("bad", tmp_path) is None
    assert not (tmp_path / "bad.pkl").exists()  # deleted, to be written anew
    program_cache.save("k1", tmp_path, program_cache.export(init_fn, chunk_fn, KEYS))
    (tmp_path / "k1.pkl").rename(tmp_path / "k2.pkl")  # a file under another key's name
    with pytest.warns(UserWarning, match="key 'k1'"):
        assert program_cache.load("k2", tmp_path) is None


def test_old_programs_are_pruned_and_an_unwritable_folder_only_warns(tmp_path, monkeypatch):
    monkeypatch.setattr(program_cache, "MAX_FILES", 2)
    programs = program_cache.export(init_fn, chunk_fn, KEYS)
    for i, key in enumerate(("a", "b", "c")):
        path = program_cache.save(key, tmp_path, programs)
        os.utime(path, (1000 + i, 1000 + i))  # distinct write times
    assert sorted(p.name for p in tmp_path.glob("*.pkl")) == ["b.pkl", "c.pkl"]
    blocked = tmp_path / "file"
    blocked.write_text("")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert program_cache.save("d", blocked / "sub", programs) is None
    assert any("cannot write" in str(w.message) for w in caught)
