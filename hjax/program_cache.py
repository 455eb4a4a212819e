"""Traced training programs kept on disk, so a second process skips Python tracing and lowering.

XLA's persistent cache (`hjax.compile_cache`) serves a compiled executable only after the program
has been traced and lowered again, and on push or the gripper tasks that tracing is most of a
warm start (benchmarks/results/compile_time.md). `hjax.train` therefore builds its init and
chunk programs with `jax.export`: traced and lowered once, written to
`<compile cache folder>/hjax-programs/<key>.hjaxprog`, and in a later process read back and handed
straight to XLA, whose own cache then serves the executable. Both processes compile the same
exported module, so a run computes the same bits whether its program was traced or loaded.

The key (`program_key`) is a SHA-256 over everything that shapes the traced program: the config
less seed and run length (`hjax.loop.program_identity`), the number of seeds, the source of every
module of the `hjax` package (`hjax.envs` included), the versions of Python, jax, jaxlib, flax, optax, chex,
brax, mujoco, mujoco-mjx, numpy and flatbuffers (`_VERSIONS`), the backend, device kind and
count, JAX's config flags and `XLA_FLAGS`.
Envs defined outside the `hjax.envs` package (a user's own class) are not covered by that source
hash, so their programs are traced every time and never written. A file that cannot be read
(truncated, another format, a checksum that does not match) is traced again and rewritten.

What a file holds, and nothing else: `MAGIC`, the length of a JSON header, the header (format,
key, the two tree structures, each program's size and SHA-256), then the two programs as
`jax.export`'s own serialisation (a flatbuffer with the StableHLO module), read back with
`jax.export.deserialize`. The programs take and return flat lists of arrays, so their own tree
structures are plain lists; the state and metrics trees are written as plain JSON
(`tree_to_data`): leaves, tuples, lists, dicts, None and node types of the packages in
`NODE_PACKAGES` named by module and class, with their node data restricted to JSON scalars,
tuples and lists. Reading one back (`tree_from_data`) imports nothing outside those packages
and calls no constructor: the tree is rebuilt from the registered node types with
`PyTreeDef.from_node_data_and_children`. No file is ever unpickled; files of the former pickle
format (`*.pkl`) are never opened and are deleted on the next write.

The folder lives inside the XLA cache folder, so it is on and off with it (`HJAX_COMPILE_CACHE=0`)
and `hjax.compile_cache.clear()` (or deleting the folder) clears both; `HJAX_PROGRAM_CACHE=0`
turns off only this one (every process traces again; XLA's cache still serves executables).
The key cannot see code changed at runtime (a monkeypatched hjax function): turn it off then. At most `MAX_FILES`
programs are kept, the least recently written deleted first. A program is code the process will
run, as XLA's executables are, so both folders must be the user's own: the programs folder is
created with mode 0o700, and it (and the XLA folder around it) is used only when owned by the
user and not writable by group or others (`hjax.compile_cache.untrusted_reason`); otherwise
programs are traced and not kept, with one warning naming the folder and why. Host side; not
jittable.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import importlib.metadata
import json
import math
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable

import jax

from hjax import compile_cache

ENV_SWITCH = "HJAX_PROGRAM_CACHE"
FOLDER = "hjax-programs"
FORMAT = 2  # bump when the file layout changes (1: pickles, never read)
SUFFIX = ".hjaxprog"
MAGIC = b"hjax-programs\n"
NODE_PACKAGES = ("hjax", "optax", "flax", "chex")
"""The only packages whose pytree node types a file may name (hjax's states, optax's optimiser
states); their versions are part of the key."""
MAX_FILES = 64
"""Programs kept; a tiny point_mass program is ~0.1 MB, a gripper program a few MB."""
_PACKAGES = ("hjax", "hjax.envs")  # hjax.envs lives in its own folder (envs/) of the checkout
_VERSIONS = ("jax", "jaxlib", "flax", "optax", "chex", "brax", "mujoco", "mujoco-mjx", "numpy", "flatbuffers")
_BUILTIN_NODES: dict[str, type] = {"tuple": tuple, "list": list, "dict": dict, "None": type(None)}
_LEAF = "*"
_HEADER_BYTES = 8  # the header's length, little-endian


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


def _type_name(node_type: type) -> str:
    """The name a file gives a pytree node type: a builtin's short name, else "module:qualname"
    for a type of `NODE_PACKAGES` that the name finds again; TypeError for any other type."""
    for name, builtin in _BUILTIN_NODES.items():
        if node_type is builtin:
            return name
    name = f"{node_type.__module__}:{node_type.__qualname__}"
    try:
        found = _type_from_name(name)
    except (ImportError, AttributeError, ValueError) as e:
        raise TypeError(f"pytree node type {name} cannot be named in a file ({e})") from e
    if found is not node_type:
        raise TypeError(f"pytree node type {name} is not found again by its name")
    return name


def _type_from_name(name: str) -> type:
    """The node type `_type_name` gave `name`. Imports only modules of `NODE_PACKAGES` and reads
    no dunder attribute; ValueError for a name outside them or that is not a class."""
    if name in _BUILTIN_NODES:
        return _BUILTIN_NODES[name]
    module, _, qualname = name.partition(":")
    module_parts, class_parts = module.split("."), qualname.split(".")
    if (module_parts[0] not in NODE_PACKAGES
            or not all(p.isidentifier() and not p.startswith("__") for p in module_parts + class_parts)):
        raise ValueError(f"node type {name!r} is not a type of {', '.join(NODE_PACKAGES)}")
    found: Any = importlib.import_module(module)
    for part in class_parts:
        found = getattr(found, part)
    if not isinstance(found, type):
        raise ValueError(f"node type {name!r} is not a class")
    return found


def _aux_to_data(aux: Any) -> Any:
    """A node's data (dict keys, a dataclass's static fields) as JSON; TypeError unless it is
    built of None, bools, ints, finite floats and strings in tuples and lists."""
    if aux is None or type(aux) in (bool, int, str) or (type(aux) is float and math.isfinite(aux)):
        return aux
    if type(aux) is tuple:
        return {"tuple": [_aux_to_data(a) for a in aux]}
    if type(aux) is list:
        return [_aux_to_data(a) for a in aux]
    raise TypeError(f"pytree node data {aux!r} is not plain data")


def _aux_from_data(data: Any) -> Any:
    """Inverse of `_aux_to_data`; ValueError for anything it does not write."""
    if data is None or type(data) in (bool, int, float, str):
        return data
    if type(data) is list:
        return [_aux_from_data(d) for d in data]
    if type(data) is dict and list(data) == ["tuple"] and type(data["tuple"]) is list:
        return tuple(_aux_from_data(d) for d in data["tuple"])
    raise ValueError(f"unexpected node data {data!r}")


def tree_to_data(tree: jax.tree_util.PyTreeDef) -> Any:
    """A tree structure as plain JSON data: "*" for a leaf, else {"type", "aux", "children"}.
    TypeError for a node type or node data that `tree_from_data` could not rebuild safely."""
    node = tree.node_data()
    if node is None:
        return _LEAF
    node_type, aux = node
    return {"type": _type_name(node_type), "aux": _aux_to_data(aux),
            "children": [tree_to_data(child) for child in tree.children()]}


def tree_from_data(data: Any) -> jax.tree_util.PyTreeDef:
    """The tree structure `tree_to_data` described, rebuilt from registered node types without
    calling any constructor; ValueError (or the registry's error) for anything else."""
    if data == _LEAF:
        return jax.tree.structure(0)
    if type(data) is not dict or set(data) != {"type", "aux", "children"} or type(data["children"]) is not list \
            or type(data["type"]) is not str:
        raise ValueError(f"not a tree description: {str(data)[:80]}")
    node = (_type_from_name(data["type"]), _aux_from_data(data["aux"]))
    children = [tree_from_data(child) for child in data["children"]]
    return jax.tree_util.PyTreeDef.from_node_data_and_children(jax.tree_util.default_registry, node, children)


def folder() -> Path | None:
    """Where programs are kept: inside the XLA cache folder; None when that cache is off,
    HJAX_PROGRAM_CACHE is 0/off/false/no, or the XLA folder is not the user's own (one warning)."""
    xla = compile_cache.current_dir()
    if xla is None or not compile_cache.enabled_by_env(ENV_SWITCH):
        return None
    if not compile_cache.trusted(xla, "program cache"):
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
    """The file key of a program (`hjax.loop.program_identity`), or None when its env is defined
    outside the `hjax.envs` package, whose sources the key cannot cover."""
    if not (env_class.__module__ + ".").startswith("hjax.envs."):
        return None
    return hashlib.sha256(repr((program, environment)).encode()).hexdigest()[:40]


def _encode(key: str, programs: Programs) -> bytes:
    """The file for `programs` under `key` (layout in the module docstring); TypeError or
    ValueError when their trees cannot be written as plain data, ImportError without flatbuffers."""
    blobs = {"init": programs.init.serialize(), "chunk": programs.chunk.serialize()}
    trees = {"state_tree": tree_to_data(programs.state_tree), "metrics_tree": tree_to_data(programs.metrics_tree)}
    for name, tree in (("state_tree", programs.state_tree), ("metrics_tree", programs.metrics_tree)):
        if tree_from_data(json.loads(json.dumps(trees[name]))) != tree:
            raise TypeError(f"the {name} does not survive being written as plain data")
    header = {"format": FORMAT, "key": key, **trees,
              "programs": [{"name": n, "bytes": len(b), "sha256": hashlib.sha256(b).hexdigest()}
                           for n, b in blobs.items()]}
    text = json.dumps(header, allow_nan=False, separators=(",", ":")).encode()
    return b"".join([MAGIC, len(text).to_bytes(_HEADER_BYTES, "little"), text, *blobs.values()])


def _decode(key: str, data: bytes) -> Programs:
    """The programs in a file's bytes; raises (ValueError and others) unless it is a well-formed
    file of this format under `key` whose programs match their checksums and trees."""
    if not data.startswith(MAGIC):
        raise ValueError("not a program file")
    start = len(MAGIC) + _HEADER_BYTES
    size = int.from_bytes(data[len(MAGIC):start], "little")
    if start + size > len(data):
        raise ValueError("truncated header")
    header = json.loads(data[start:start + size])
    if type(header) is not dict:
        raise ValueError("not a header")
    if header.get("format") != FORMAT or header.get("key") != key:
        raise ValueError(f"format {header.get('format')!r}, key {header.get('key')!r}")
    blobs, offset = {}, start + size
    for entry in header["programs"]:
        blob = data[offset:offset + int(entry["bytes"])]
        offset += len(blob)
        if len(blob) != entry["bytes"] or hashlib.sha256(blob).hexdigest() != entry["sha256"]:
            raise ValueError(f"program {entry['name']!r} is truncated or altered (checksum)")
        blobs[entry["name"]] = blob
    if offset != len(data) or set(blobs) != {"init", "chunk"}:
        raise ValueError("unexpected programs or trailing bytes")
    programs = Programs(init=jax.export.deserialize(bytearray(blobs["init"])),
                        chunk=jax.export.deserialize(bytearray(blobs["chunk"])),
                        state_tree=tree_from_data(header["state_tree"]),
                        metrics_tree=tree_from_data(header["metrics_tree"]))
    state_leaves = programs.state_tree.num_leaves
    if (len(programs.init.out_avals) != state_leaves or len(programs.chunk.in_avals) != state_leaves
            or len(programs.chunk.out_avals) != state_leaves + programs.metrics_tree.num_leaves):
        raise ValueError("the trees do not fit the programs")
    return programs


def load(key: str, where: Path) -> Programs | None:
    """The programs saved under `key`, or None if there are none, the folder is not the user's
    own (one warning), or the file is unreadable (then it is deleted, to be written anew)."""
    if where.exists() and not compile_cache.trusted(where, "program cache"):
        return None
    path = where / f"{key}{SUFFIX}"
    try:
        with open(path, "rb") as f:
            data = f.read()
        return _decode(key, data)
    except FileNotFoundError:
        return None
    except Exception as e:  # noqa: BLE001 - any unreadable file is traced again, never trusted
        warnings.warn(f"hjax program cache: {path} is unreadable ({type(e).__name__}: {e}); tracing anew",
                      stacklevel=2)
        path.unlink(missing_ok=True)
        return None


def save(key: str, where: Path, programs: Programs) -> Path | None:
    """Write `programs` under `key` (atomically; the folder created 0o700 if missing), then keep
    the newest `MAX_FILES` and delete files of the former pickle format unread. A folder that
    cannot be written, or is not the user's own (one warning), leaves the run uncached rather
    than failing it."""
    try:
        data = _encode(key, programs)
    except (ImportError, TypeError, ValueError, RuntimeError) as e:  # no flatbuffers, or trees not plain data
        warnings.warn(f"hjax program cache: cannot serialise the program ({e}); it was not kept", stacklevel=2)
        return None
    try:
        compile_cache.make_folder(where)
        if not compile_cache.trusted(where, "program cache"):
            return None
        fd, tmp = tempfile.mkstemp(dir=where, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            path = where / f"{key}{SUFFIX}"
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        for old in where.glob("*.pkl"):  # the former format: never read, only removed
            old.unlink(missing_ok=True)
        files = sorted(where.glob(f"*{SUFFIX}"), key=lambda p: p.stat().st_mtime)
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
