"""Traced training programs kept on disk, so a second process skips Python tracing and lowering.

XLA's persistent cache (`hjax.compile_cache`) serves a compiled executable only after the program
has been traced and lowered again, and on push or the gripper tasks that tracing is most of a
warm start (benchmarks/results/compile_time.md). `hjax.train` therefore builds its init and
chunk programs with `jax.export`: traced and lowered once, written to
`<compile cache folder>/hjax-programs/<key>.pkl`, and in a later process read back and handed
straight to XLA, whose own cache then serves the executable. Both processes compile the same
exported module, so a run computes the same bits whether its program was traced or loaded.

The key (`program_key`) is a SHA-256 over everything that shapes the traced program: the config
less seed and run length (`hjax.train._program_key`), the number of seeds, the source of every
module of the `hjax` package (`hjax.envs` included), the versions of Python, jax, jaxlib, flax, optax, chex,
brax, mujoco, mujoco-mjx, numpy and flatbuffers (`_VERSIONS`), the backend, device kind and
count, JAX's config flags and `XLA_FLAGS`.
Envs defined outside the `hjax.envs` package (a user's own class) are not covered by that source
hash, so their programs are traced every time and never written. A file that cannot be read
(truncated, another format) is traced again and rewritten.

The folder lives inside the XLA cache folder, so it is on and off with it (`HJAX_COMPILE_CACHE=0`)
and `hjax.compile_cache.clear()` (or deleting the folder) clears both; `HJAX_PROGRAM_CACHE=0`
turns off only this one (every process traces again; XLA's cache still serves executables).
The key cannot see code changed at runtime (a monkeypatched hjax function): turn it off then. At most `MAX_FILES`
programs are kept, the least recently written deleted first. Files are pickles, trusted as the
XLA cache's executables are: only a folder of your own should be used. Host side; not jittable.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import importlib.metadata
import os
import pickle
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable

import jax

from hjax import compile_cache

ENV_SWITCH = "HJAX_PROGRAM_CACHE"
FOLDER = "hjax-programs"
FORMAT = 1  # bump when the file layout changes
MAX_FILES = 64
"""Programs kept; a tiny point_mass program is ~0.1 MB, a gripper program a few MB."""
_PACKAGES = ("hjax", "hjax.envs")  # hjax.envs lives in its own folder (envs/) of the checkout
_VERSIONS = ("jax", "jaxlib", "flax", "optax", "chex", "brax", "mujoco", "mujoco-mjx", "numpy", "flatbuffers")


@dataclasses.dataclass(frozen=True)
class Programs:
    """A run's two exported programs, flat in and out, with the trees to rebuild their values:
    `init(keys) -> state leaves` and `chunk(state leaves) -> (state leaves, metric leaves)`."""
    init: jax.export.Exported
    chunk: jax.export.Exported
    state_tree: Any
    metrics_tree: Any

    def compile(self) -> tuple[Callable, Callable]:
        """Compiled `init(keys) -> state` and `chunk(state) -> (state, metrics)`, the chunk
        donating its input state (XLA's persistent cache serves both when it holds them)."""
        abstract = lambda exp: [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in exp.in_avals]  # noqa: E731
        init = jax.jit(self.init.call).lower(*abstract(self.init)).compile()
        chunk = jax.jit(self.chunk.call, donate_argnums=0).lower(abstract(self.chunk)).compile()
        state_tree, metrics_tree = self.state_tree, self.metrics_tree

        def run_init(keys):
            return jax.tree.unflatten(state_tree, init(keys))

        def run_chunk(state):
            state_leaves, metric_leaves = chunk(jax.tree.leaves(state))
            return jax.tree.unflatten(state_tree, state_leaves), jax.tree.unflatten(metrics_tree, metric_leaves)

        return run_init, run_chunk


def export(init_fn: Callable, chunk_fn: Callable, keys: jax.Array) -> Programs:
    """Trace and lower `init_fn(keys) -> state` and `chunk_fn(state) -> (state, metrics)` once
    each, with flat inputs and outputs (custom pytree nodes need no serialisation rules)."""
    trees: dict[str, Any] = {}  # the output trees, recorded while tracing: no second trace

    def flat_init(keys):
        state = init_fn(keys)
        trees["state"] = jax.tree.structure(state)
        return jax.tree.leaves(state)

    def flat_chunk(state_leaves):
        state, metrics = chunk_fn(jax.tree.unflatten(trees["state"], state_leaves))
        trees["metrics"] = jax.tree.structure(metrics)
        return jax.tree.leaves(state), jax.tree.leaves(metrics)

    init = jax.export.export(jax.jit(flat_init))(keys)
    state_leaves = [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in init.out_avals]
    chunk = jax.export.export(jax.jit(flat_chunk))(state_leaves)
    return Programs(init=init, chunk=chunk, state_tree=trees["state"], metrics_tree=trees["metrics"])


def folder() -> Path | None:
    """Where programs are kept: inside the XLA cache folder; None when that cache is off or
    HJAX_PROGRAM_CACHE is 0/off/false/no."""
    xla = compile_cache.current_dir()
    if xla is None or not compile_cache.enabled_by_env(ENV_SWITCH):
        return None
    return xla / FOLDER


@functools.lru_cache(maxsize=1)
def source_digest() -> str:
    """SHA-256 of every module of the `hjax` and `hjax.envs` packages (paths and contents)."""
    h = hashlib.sha256()
    for package in _PACKAGES:
        root = Path(importlib.import_module(package).__file__).parent
        for path in sorted(root.rglob("*.py")):
            h.update(str(path.relative_to(root.parent)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def environment() -> dict[str, Any]:
    """What besides the config and the sources shapes a traced program, for `program_key`."""
    devices = jax.devices()
    return {
        "format": FORMAT, "python": sys.version, "sources": source_digest(),
        "versions": {name: _version(name) for name in _VERSIONS},
        "backend": jax.default_backend(), "device_kind": devices[0].device_kind, "devices": len(devices),
        "processes": jax.process_count(), "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "jax_config": sorted((k, repr(v)) for k, v in jax.config.values.items() if "cache" not in k),
    }


def program_key(program: tuple, env_class: type, environment: dict[str, Any]) -> str | None:
    """The file key of a program (`hjax.train._program_key`), or None when its env is defined
    outside the `hjax.envs` package, whose sources the key cannot cover."""
    if not (env_class.__module__ + ".").startswith("hjax.envs."):
        return None
    return hashlib.sha256(repr((program, environment)).encode()).hexdigest()[:40]


def load(key: str, where: Path) -> Programs | None:
    """The programs saved under `key`, or None if there are none or the file is unreadable
    (then it is deleted, to be written anew)."""
    path = where / f"{key}.pkl"
    try:
        with open(path, "rb") as f:
            saved = pickle.load(f)
        if saved.get("format") != FORMAT or saved.get("key") != key:
            raise ValueError(f"format {saved.get('format')!r}, key {saved.get('key')!r}")
        return Programs(init=jax.export.deserialize(saved["init"]), chunk=jax.export.deserialize(saved["chunk"]),
                        state_tree=saved["state_tree"], metrics_tree=saved["metrics_tree"])
    except FileNotFoundError:
        return None
    except Exception as e:  # noqa: BLE001 - any unreadable file is traced again, never trusted
        warnings.warn(f"hjax program cache: {path} is unreadable ({type(e).__name__}: {e}); tracing anew",
                      stacklevel=2)
        path.unlink(missing_ok=True)
        return None


def save(key: str, where: Path, programs: Programs) -> Path | None:
    """Write `programs` under `key` (atomically), then keep the newest `MAX_FILES`. A folder
    that cannot be written leaves the run uncached rather than failing it."""
    try:
        record = {"format": FORMAT, "key": key, "init": programs.init.serialize(),
                  "chunk": programs.chunk.serialize(), "state_tree": programs.state_tree,
                  "metrics_tree": programs.metrics_tree}
    except ImportError as e:  # jax.export's serialisation needs flatbuffers (a dependency of hjax)
        warnings.warn(f"hjax program cache: cannot serialise the program ({e}); it was not kept", stacklevel=2)
        return None
    try:
        where.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=where, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            pickle.dump(record, f, protocol=pickle.HIGHEST_PROTOCOL)
        path = where / f"{key}.pkl"
        os.replace(tmp, path)
        files = sorted(where.glob("*.pkl"), key=lambda p: p.stat().st_mtime)
        for old in files[:-MAX_FILES]:
            old.unlink(missing_ok=True)
        return path
    except OSError as e:
        warnings.warn(f"hjax program cache: cannot write to {where} ({e}); the program was not kept", stacklevel=2)
        return None


def programs_for(program: tuple, env_class: type, build: Callable[[], tuple[Callable, Callable]],
                 keys: jax.Array) -> tuple[Programs, str]:
    """The exported programs of a run: loaded when saved earlier, else `build()`'s `(init_fn,
    chunk_fn)` traced (and saved when the cache is on and the env is covered). Returns them and
    where they came from: "loaded", "traced" (and saved) or "traced, not kept"."""
    where = folder()
    key = None if where is None else program_key(program, env_class, environment())
    if key is not None:
        programs = load(key, where)
        if programs is not None:
            return programs, "loaded"
    programs = export(*build(), keys)
    if key is not None and save(key, where, programs) is not None:
        return programs, "traced"
    return programs, "traced, not kept"
