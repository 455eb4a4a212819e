import os
from pathlib import Path

# Tests run on the CPU. Compiled programs are cached on disk for this clone, so the subprocess
# tests (CLI, signals, kills, multi-device) and repeated tiny configs compile once. The cache
# never changes results: it is keyed by the program and the JAX version.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".pytest_cache" / "jax"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
