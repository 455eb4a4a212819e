"""A persistent XLA compilation cache, on by default, so a second process that compiles the same
program (a notebook restart, a repeated CLI run, the demo) loads it from disk instead.

`import hjax` calls `enable_default()`, which points JAX's own persistent cache
(`jax_compilation_cache_dir`) at a per-user folder:

    $HJAX_COMPILE_CACHE_DIR                  if set
    $XDG_CACHE_HOME/hjax/xla                 else, if XDG_CACHE_HOME is set
    ~/.cache/hjax/xla                        otherwise

`HJAX_COMPILE_CACHE=0` (or off/false/no) switches it off. A cache folder the user already gave JAX
(`JAX_COMPILATION_CACHE_DIR` or `jax.config.update("jax_compilation_cache_dir", ...)`) is kept.
Clearing the cache is deleting the folder (`hjax.compile_cache.clear()` or `rm -r` it). The folder
also holds `hjax-programs/`, hjax's traced programs (`hjax.program_cache`), so that a later
process skips tracing as well as compiling.

Correctness rests on JAX's cache key, which hashes the optimised program, the compile options,
the backend and device kind, and the jax/jaxlib versions: a program compiled for another JAX
version, device or config is never served (`tests/test_compile_cache.py` checks that a changed
config compiles anew and the same one does not). Host side; nothing here is jittable.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import jax

ENV_SWITCH = "HJAX_COMPILE_CACHE"
ENV_DIR = "HJAX_COMPILE_CACHE_DIR"
_OFF = ("0", "off", "false", "no")  # what switches a cache off
MIN_COMPILE_SECONDS = 0.2
"""Programs that compile faster than this are not written to the cache (JAX's default is 1 s;
the small init and evaluation programs of a run take 0.2-1 s here and are worth keeping)."""
MAX_BYTES = 4 * 1024**3
"""Size bound of the folder; JAX evicts the least recently used programs past it (JAX's default
is no bound). A push program is about 5-20 MB, so this keeps a few hundred."""


def default_dir() -> Path:
    """The cache folder hjax uses when nothing else is configured (see the module docstring)."""
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "hjax" / "xla"


def enabled_by_env(variable: str = ENV_SWITCH) -> bool:
    """False when the switch `variable` (HJAX_COMPILE_CACHE; hjax.program_cache passes its own)
    is 0/off/false/no."""
    return os.environ.get(variable, "1").strip().lower() not in _OFF


def current_dir() -> Path | None:
    """The folder JAX's persistent cache writes to now, or None when it is off."""
    value = jax.config.jax_compilation_cache_dir
    return Path(value) if value else None


def enable(path: str | Path | None = None) -> Path:
    """Turn the persistent cache on at `path` (default: `default_dir()`); returns the folder.
    Takes effect for programs compiled after the call."""
    folder = Path(path).expanduser() if path is not None else default_dir()
    folder.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    if jax.config.jax_persistent_cache_min_compile_time_secs > MIN_COMPILE_SECONDS:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    if jax.config.jax_compilation_cache_max_size < 0:
        jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    return folder


def disable() -> None:
    """Turn the persistent cache off for programs compiled after the call."""
    jax.config.update("jax_compilation_cache_dir", None)


def enable_default() -> Path | None:
    """What `import hjax` does: keep a folder the user gave JAX, else enable `default_dir()`
    unless HJAX_COMPILE_CACHE switches it off. Returns the folder in use, or None. A folder
    that cannot be created (read-only home) leaves the cache off rather than failing the import."""
    if current_dir() is not None:
        return current_dir()
    if not enabled_by_env():
        return None
    try:
        return enable()
    except OSError:
        return None


def clear(path: str | Path | None = None) -> Path:
    """Delete the cache folder (default: the one in use, else `default_dir()`); returns it."""
    folder = Path(path) if path is not None else (current_dir() or default_dir())
    shutil.rmtree(folder, ignore_errors=True)
    return folder
