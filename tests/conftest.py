import os

# Tests run on the CPU with a deterministic, single-threaded-friendly setup.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
