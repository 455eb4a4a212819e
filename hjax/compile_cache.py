"""A persistent XLA compilation cache, on by default, so a second process that compiles the same
program (a notebook restart, a repeated CLI run, the demo) loads it from disk instead.

hjax calls `enable_default()` before its first use of JAX (the first `hjax` attribute that needs
it), which points JAX's own persistent cache (`jax_compilation_cache_dir`) at a per-user folder:

    $HJAX_COMPILE_CACHE_DIR                  if set
    $XDG_CACHE_HOME/hjax/xla                 else, if XDG_CACHE_HOME is set
    ~/.cache/hjax/xla                        otherwise

`HJAX_COMPILE_CACHE=0` (or off/false/no) switches it off. A cache folder the user already gave JAX
(`JAX_COMPILATION_CACHE_DIR` or `jax.config.update("jax_compilation_cache_dir", ...)`) is kept,
if it passes the trust check below.
Clearing the cache is deleting the folder (`hjax.compile_cache.clear()` or `rm -r` it). The folder
also holds `hjax-programs/`, hjax's traced programs (`hjax.program_cache`), so that a later
process skips tracing as well as compiling.

Correctness rests on JAX's cache key, which hashes the optimised program, the compile options,
the backend and device kind, and the jax/jaxlib versions: a program compiled for another JAX
version, device or config is never served (`tests/test_compile_cache.py` checks that a changed
config compiles anew and the same one does not).

Trust: whoever can write to the folder decides what every hjax process that reads it runs (XLA's
executables and hjax's traced programs are both code), so the folder is the trust boundary. hjax
creates its folders with mode 0o700 and uses a folder, its own or one the user gave JAX, only when
it is owned by the current user and not writable by group or others (`untrusted_reason`);
otherwise the cache stays off and one warning per folder and process names the folder and why.
Parent folders are not checked: the folder itself is the boundary. On platforms without POSIX
ownership (no `os.getuid`, as on Windows, whose mode bits say nothing about other users) the
folder is not checked. Host side; nothing here is jittable.
"""

from __future__ import annotations

import os
import shutil
import stat
import warnings
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
FOLDER_MODE = 0o700
"""Mode of the folders hjax creates: the user's alone."""
_WARNED: set[str] = set()  # folders already warned about in this process


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


def untrusted_reason(folder: str | Path) -> str | None:
    """Why `folder` must not hold a cache, or None when it may: it must be a folder owned by the
    current user and not writable by group or others. Not checked (None) where POSIX ownership
    does not exist (no `os.getuid`, e.g. Windows)."""
    getuid = getattr(os, "getuid", None)
    if getuid is None:
        return None
    try:
        info = os.stat(folder)
    except OSError as e:
        return f"it cannot be inspected ({e.strerror or e})"
    if not stat.S_ISDIR(info.st_mode):
        return "it is not a folder"
    uid = getuid()
    if info.st_uid != uid:
        return f"it is owned by uid {info.st_uid}, not by you (uid {uid})"
    if info.st_mode & 0o022:
        return f"it is writable by group or others (mode {oct(stat.S_IMODE(info.st_mode))})"
    return None


def trusted(folder: str | Path, what: str = "compile cache", setting: str = ENV_DIR) -> bool:
    """Whether the `what` cache may use `folder` (`untrusted_reason`); when not, warns once per
    folder and process, naming the folder, why, and what to do (`setting` names the variable
    that chose the folder)."""
    reason = untrusted_reason(folder)
    if reason is None:
        return True
    if str(folder) not in _WARNED:
        _WARNED.add(str(folder))
        fix = "chmod go-w it or " if "writable" in reason else ""
        warnings.warn(f"hjax: not using the {what} at {folder}: {reason}; {fix}set {setting} to a folder "
                      "of your own", UserWarning, stacklevel=2)
    return False


def make_folder(folder: Path) -> None:
    """Create `folder` (and its parents) if missing, the folder itself with mode 0o700; raises
    OSError when it cannot be created."""
    folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)


def enable(path: str | Path | None = None) -> Path:
    """Turn the persistent cache on at `path` (default: `default_dir()`, created 0o700 if missing);
    returns the folder. A folder that is not the user's own, or is writable by group or others,
    is not used: the cache is turned off with one warning (`current_dir()` is then None). Takes
    effect for programs compiled after the call."""
    folder = Path(path).expanduser() if path is not None else default_dir()
    make_folder(folder)
    if not trusted(folder):
        disable()
        return folder
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
    """What hjax does before its first use of JAX: keep a folder the user gave JAX, else enable
    `default_dir()` unless HJAX_COMPILE_CACHE switches it off. Either folder is used only when
    it is the user's own and not writable by group or others; otherwise the cache is turned off
    with one warning. Returns the folder in use, or None. A folder that cannot be created
    (read-only home) leaves the cache off rather than failing the import."""
    given = current_dir()
    if given is not None:
        try:
            make_folder(given)  # JAX would create it on its first write; hjax creates it 0o700
        except OSError:
            pass  # untrusted_reason says it cannot be inspected
        if trusted(given, setting="JAX_COMPILATION_CACHE_DIR"):
            return given
        disable()
        return None
    if not enabled_by_env():
        return None
    try:
        enable()
    except OSError:
        return None
    return current_dir()


def clear(path: str | Path | None = None) -> Path:
    """Delete the cache folder (default: the one in use, else `default_dir()`); returns it."""
    folder = Path(path) if path is not None else (current_dir() or default_dir())
    shutil.rmtree(folder, ignore_errors=True)
    return folder
