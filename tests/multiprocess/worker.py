"""One process of a (multi-process) hjax run. Started by tests/test_multiprocess.py, not a test.

    python tests/multiprocess/worker.py --jobs JSON --watch DIR
        [--num-processes 2 --process-id I --port P --timeout S]

`--jobs` is a list of `{"config": {Config fields}, "out": PREFIX, "run_dir": DIR, "resume": DIR,
"after": PATH}` run one after another in this process (a job with "after" first waits, up to
`--wait` seconds, for PATH to exist: another launch's result); a compiled program is reused
across jobs that differ only in num_epochs. XLA_FLAGS (the simulated device count) comes from
the environment. For each job, PREFIX.pI.npz (I: the process index) holds the metrics and the
final critic parameters, and PREFIX.pI.json the process index and count, device counts, compile
time, and every file this process opened for writing or renamed under `--watch` during the job,
as Python's audit hooks saw them.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path


def _record_writes(root: Path, writes: list[str]) -> None:
    """Audit hook: note Python-level writes (open for writing, rename, replace) below `root`."""
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND

    def below(path) -> str | None:
        try:
            p = Path(os.fsdecode(path)).resolve()
        except (TypeError, ValueError):
            return None
        return str(p.relative_to(root)) if p.is_relative_to(root) else None

    def hook(event, args):
        if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            mode, flags = args[1], args[2]
            writing = any(c in mode for c in "wax+") if isinstance(mode, str) else bool(flags & write_flags)
            if writing and (rel := below(args[0])) is not None:
                writes.append(rel)
        elif event in ("os.rename", "os.replace") and (rel := below(args[1])) is not None:
            writes.append(rel)

    sys.addaudithook(hook)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", required=True, help="a JSON list of jobs (see the module docstring)")
    parser.add_argument("--watch", required=True, help="record this process's Python writes below this directory")
    parser.add_argument("--num-processes", type=int, default=1)
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--timeout", default=None)
    parser.add_argument("--wait", type=float, default=300.0)
    args = parser.parse_args()

    import jax
    import numpy as np

    from hjax import distributed

    if args.num_processes > 1:
        distributed.initialize(args.timeout, f"127.0.0.1:{args.port}", args.num_processes, args.process_id)
    import hjax

    writes: list[str] = []
    _record_writes(Path(args.watch).resolve(), writes)
    for job in json.loads(args.jobs):
        deadline = time.monotonic() + args.wait
        while job.get("after") and not Path(job["after"]).exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{job['after']} did not appear within {args.wait} s")
            time.sleep(0.1)
        writes.clear()
        fields = dict(job["config"], hidden_sizes=tuple(job["config"]["hidden_sizes"]))
        run_dir, resume = job.get("run_dir"), job.get("resume")
        result = hjax.train(hjax.Config(**fields), run_dir=run_dir, resume=resume,
                            save_buffer=(run_dir or resume) is not None, progress_bar="lines", verbose=False)
        critic = {f"critic{jax.tree_util.keystr(p)}": np.asarray(x)
                  for p, x in jax.tree_util.tree_leaves_with_path(result.state.learner.critic_params)}
        out = f"{job['out']}.p{jax.process_index()}"
        np.savez(out + ".npz", **result.metrics, **critic)
        Path(out + ".json").write_text(json.dumps({
            "process_index": jax.process_index(), "process_count": jax.process_count(),
            "device_count": jax.device_count(), "local_device_count": jax.local_device_count(),
            "compile_seconds": result.compile_seconds, "writes": sorted(set(writes))}))


if __name__ == "__main__":
    main()
