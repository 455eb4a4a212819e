"""Traced programs kept on disk (hjax/program_cache.py): the key covers what shapes a program, a
loaded program computes what the traced one and a plain `jax.jit` of the same functions compute,
and a broken or unwritable folder costs a trace, never a wrong program; no file is unpickled, and
a folder that is not the user's alone is neither read nor written (one warning). A toy init and chunk
stand in for the trainer (the full round trip through `hjax.train` is in test_compile_cache.py)."""

import json
import os
import pickle
import sys
import warnings
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hjax.envs
from hjax import compile_cache, program_cache
from hjax.counter import Counter

KEYS = jax.random.PRNGKey(3)
SUFFIX = program_cache.SUFFIX


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
    assert path == tmp_path / f"k1{SUFFIX}" and path.stat().st_size > 0
    assert path.read_bytes().startswith(program_cache.MAGIC)
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
    assert how == "traced" and len(builds) == 2 and len(list(tmp_path.glob(f"*{SUFFIX}"))) == 2
    _, how = program_cache.programs_for(program, OwnEnv, build, KEYS)  # a user's env: never kept
    assert how == "traced, not kept" and len(builds) == 3 and len(list(tmp_path.glob(f"*{SUFFIX}"))) == 2
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
    (tmp_path / f"bad{SUFFIX}").write_bytes(b"not a program file")
    with pytest.warns(UserWarning, match=f"bad{SUFFIX} is unreadable"):
        assert program_cache.load("bad", tmp_path) is None
    assert not (tmp_path / f"bad{SUFFIX}").exists()  # deleted, to be written anew
    program_cache.save("k1", tmp_path, program_cache.export(init_fn, chunk_fn, KEYS))
    good = (tmp_path / f"k1{SUFFIX}").read_bytes()
    (tmp_path / f"k1{SUFFIX}").rename(tmp_path / f"k2{SUFFIX}")  # a file under another key's name
    with pytest.warns(UserWarning, match="key 'k1'"):
        assert program_cache.load("k2", tmp_path) is None
    flipped = good[:-10] + bytes(b ^ 0xFF for b in good[-10:])  # the chunk program altered
    for broken, why in ((good[:-10], "checksum"), (flipped, "checksum"), (good[:40], "truncated header"),
                        (good + b"x", "trailing bytes")):
        (tmp_path / f"k1{SUFFIX}").write_bytes(broken)
        with pytest.warns(UserWarning, match=f"k1{SUFFIX} is unreadable.*{why}"):
            assert program_cache.load("k1", tmp_path) is None
        assert not (tmp_path / f"k1{SUFFIX}").exists()
    (tmp_path / f"k1{SUFFIX}").write_bytes(good)
    assert program_cache.load("k1", tmp_path) is not None  # the intact file still loads


def test_old_programs_are_pruned_and_an_unwritable_folder_only_warns(tmp_path, monkeypatch):
    monkeypatch.setattr(program_cache, "MAX_FILES", 2)
    programs = program_cache.export(init_fn, chunk_fn, KEYS)
    for i, key in enumerate(("a", "b", "c")):
        path = program_cache.save(key, tmp_path, programs)
        os.utime(path, (1000 + i, 1000 + i))  # distinct write times
    assert sorted(p.name for p in tmp_path.glob(f"*{SUFFIX}")) == [f"b{SUFFIX}", f"c{SUFFIX}"]
    blocked = tmp_path / "file"
    blocked.write_text("")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert program_cache.save("d", blocked / "sub", programs) is None
    assert any("cannot write" in str(w.message) for w in caught)


class _Planted:
    """Unpickling this touches `marker`: proof that a file was unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _point_mass_program():
    return (("env", "point_mass"), ("hidden_sizes", (8,))), type(hjax.envs.make("point_mass"))


def test_a_planted_pickle_is_never_unpickled_and_is_traced_anew(tmp_path, monkeypatch):
    where = tmp_path / "programs"
    where.mkdir(mode=0o700)
    monkeypatch.setattr(program_cache, "folder", lambda: where)
    program, env_class = _point_mass_program()
    key = program_cache.program_key(program, env_class, program_cache.environment())
    marker = tmp_path / "unpickled"
    payload = pickle.dumps(_Planted(marker))
    pickle.loads(payload)  # the payload works: unpickling it does create the marker
    assert marker.exists()
    marker.unlink()
    (where / f"{key}{SUFFIX}").write_bytes(payload)  # under the file name of this very program
    (where / f"{key}.pkl").write_bytes(payload)  # and as a file of the former (pickle) format
    builds = []

    def build():
        builds.append(1)
        return init_fn, chunk_fn

    with pytest.warns(UserWarning, match=f"{key}{SUFFIX} is unreadable"):
        _, how = program_cache.programs_for(program, env_class, build, KEYS)
    assert how == "traced" and builds == [1]
    assert not marker.exists(), "a planted pickle was unpickled"
    assert not (where / f"{key}.pkl").exists()  # the former format: deleted unread
    assert (where / f"{key}{SUFFIX}").read_bytes().startswith(program_cache.MAGIC)  # rewritten
    _, how = program_cache.programs_for(program, env_class, build, KEYS)
    assert how == "loaded" and builds == [1] and not marker.exists()
    assert "pickle" not in program_cache.__dict__  # the module does not even import pickle


def _rewrite_header(path: Path, change) -> None:
    """Rewrite the JSON header of a program file (layout: MAGIC, 8-byte length, header, programs)."""
    data = path.read_bytes()
    start = len(program_cache.MAGIC) + 8
    size = int.from_bytes(data[len(program_cache.MAGIC):start], "little")
    header = json.loads(data[start:start + size])
    change(header)
    text = json.dumps(header).encode()
    path.write_bytes(program_cache.MAGIC + len(text).to_bytes(8, "little") + text + data[start + size:])


def test_trees_are_plain_data_and_name_only_trusted_node_types(tmp_path, monkeypatch):
    import optax

    tree = jax.tree.structure({"opt": optax.adam(1e-3).init({"w": jnp.zeros(2)}), "n": Counter.create(0),
                               "t": (1, None, [2.0, {"a": 3}])})
    data = program_cache.tree_to_data(tree)
    assert program_cache.tree_from_data(json.loads(json.dumps(data))) == tree
    # A module outside hjax/optax/flax/chex is never imported, whatever the file names.
    (tmp_path / "planted_module.py").write_text(f"import pathlib\npathlib.Path({str(tmp_path / 'imported')!r}).touch()\n"
                                                "class X:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("planted_module:X", "builtins:eval", "os:system", "subprocess:Popen", "hjax.counter:__class__",
                 "hjax.program_cache:__builtins__", "hjax.program_cache:json"):
        with pytest.raises(ValueError):
            program_cache.tree_from_data({"type": name, "aux": None, "children": []})
    assert "planted_module" not in sys.modules and not (tmp_path / "imported").exists()
    # The same through a whole file: a header naming such a type is unreadable, then retraced.
    program_cache.save("k", tmp_path, program_cache.export(init_fn, chunk_fn, KEYS))
    _rewrite_header(tmp_path / f"k{SUFFIX}", lambda h: h["state_tree"].update(type="planted_module:X"))
    with pytest.warns(UserWarning, match="is unreadable.*not a type of hjax"):
        assert program_cache.load("k", tmp_path) is None
    assert "planted_module" not in sys.modules and not (tmp_path / "imported").exists()


class Pair(NamedTuple):  # a node type outside the packages a file may name
    a: jax.Array
    b: jax.Array


def test_a_tree_with_an_unnamed_node_type_is_traced_and_not_kept(tmp_path):
    programs = program_cache.export(lambda k: Pair(jax.random.normal(k, (2,)), jnp.zeros(3)),
                                    lambda s: (s, {"sum": s.a.sum()}), KEYS)
    with pytest.raises(TypeError, match="test_program_cache:Pair"):
        program_cache.tree_to_data(programs.state_tree)
    with pytest.warns(UserWarning, match="cannot serialise the program"):
        assert program_cache.save("p", tmp_path, programs) is None
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o720], ids=oct)
def test_a_folder_writable_by_others_is_skipped_with_one_warning(tmp_path, monkeypatch, mode):
    where = tmp_path / f"shared-{mode:o}"
    where.mkdir()
    program, env_class = _point_mass_program()
    key = program_cache.program_key(program, env_class, program_cache.environment())
    program_cache.save(key, where, program_cache.export(init_fn, chunk_fn, KEYS))  # a valid program there
    os.chmod(where, mode)
    monkeypatch.setattr(program_cache, "folder", lambda: where)
    builds = []

    def build():
        builds.append(1)
        return init_fn, chunk_fn

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            _, how = program_cache.programs_for(program, env_class, build, KEYS)
            assert how == "traced, not kept"  # the program there is not loaded, nothing is written
    assert len(builds) == 2 and [p.name for p in where.iterdir()] == [f"{key}{SUFFIX}"]
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1, messages
    assert str(where) in messages[0] and f"writable by group or others (mode {oct(mode)})" in messages[0]
    assert program_cache.load(key, where) is None  # load and save check the folder themselves too
    assert program_cache.save(key, where, program_cache.export(init_fn, chunk_fn, KEYS)) is None


def test_a_folder_of_another_user_is_skipped_and_a_private_one_is_used(tmp_path, monkeypatch):
    where = tmp_path / "programs"
    program, env_class = _point_mass_program()
    monkeypatch.setattr(program_cache, "folder", lambda: where)
    _, how = program_cache.programs_for(program, env_class, lambda: (init_fn, chunk_fn), KEYS)
    assert how == "traced" and (where.stat().st_mode & 0o777) == 0o700  # created the user's alone
    _, how = program_cache.programs_for(program, env_class, lambda: (init_fn, chunk_fn), KEYS)
    assert how == "loaded"
    uid = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: uid + 1)  # the folder now belongs to someone else
    with pytest.warns(UserWarning, match=f"program cache at {where}: it is owned by uid {uid}, not by you"):
        _, how = program_cache.programs_for(program, env_class, lambda: (init_fn, chunk_fn), KEYS)
    assert how == "traced, not kept"


def test_the_program_folder_needs_a_trusted_compile_cache_folder(tmp_path, monkeypatch):
    xla = tmp_path / "xla"
    xla.mkdir(mode=0o700)
    monkeypatch.delenv(program_cache.ENV_SWITCH, raising=False)
    monkeypatch.setattr(compile_cache, "current_dir", lambda: xla)
    assert program_cache.folder() == xla / program_cache.FOLDER
    os.chmod(xla, 0o757)
    with pytest.warns(UserWarning, match=f"at {xla}: it is writable by group or others"):
        assert program_cache.folder() is None
