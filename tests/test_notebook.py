"""examples/quickstart.ipynb runs top to bottom on a tiny config (HJAX_NOTEBOOK_TINY=1), and is
committed without outputs (issue 28).

The kernel is this interpreter (sys.executable), started in a temporary folder with the notebook's
run directories under it (HJAX_NOTEBOOK_DIR), so nothing is written into the checkout."""

import json
import os
import sys
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"
MAX_COMMITTED_OUTPUT_BYTES = 50 * 1024
TIMEOUT_PER_CELL_S = 300


def _kernelspec_dir(tmp_path: Path) -> Path:
    """A kernelspec folder whose python3 kernel is this interpreter (whatever PATH says)."""
    folder = tmp_path / "kernels" / "python3"
    folder.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (test)", "language": "python"}
    (folder / "kernel.json").write_text(json.dumps(spec))
    return folder.parent


def _text(cell) -> str:
    """The text a cell printed or returned (stream and text/plain outputs)."""
    parts = []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            parts.append(out["text"])
        elif "data" in out:
            parts.append(out["data"].get("text/plain", ""))
    return "".join(parts)


def _images(cell) -> int:
    return sum("image/png" in out.get("data", {}) for out in cell.get("outputs", []))


def _cell(nb, needle: str):
    """The code cell whose source contains `needle` (exactly one)."""
    found = [c for c in nb.cells if c.cell_type == "code" and needle in c.source]
    assert len(found) == 1, f"{len(found)} code cells contain {needle!r}"
    return found[0]


def test_committed_notebook_is_valid_and_has_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert 12 <= len(nb.cells) <= 20 and len(code) >= 6
    assert all(c.execution_count is None for c in code), "clear execution counts before committing"
    outputs = sum(len(json.dumps(c.get("outputs", []))) for c in code)
    assert outputs < MAX_COMMITTED_OUTPUT_BYTES, f"{outputs} bytes of outputs committed"
    assert all(not c.outputs for c in code), "clear outputs before committing"
    assert "HJAX_NOTEBOOK_TINY" in code[0].source  # the first code cell picks the CI size


def test_notebook_runs_top_to_bottom_on_a_tiny_config(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # One extra cell, in this in-memory copy only: which interpreter ran the notebook.
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print('KERNEL', sys.executable)"))
    # The kernel inherits this process's environment (conftest's JAX compile cache folder too).
    env = dict(os.environ, HJAX_NOTEBOOK_TINY="1", HJAX_NOTEBOOK_DIR=str(tmp_path / "runs"), JAX_PLATFORMS="cpu")
    km = KernelManager(kernel_name="python3",
                       kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(_kernelspec_dir(tmp_path))]))
    client = NotebookClient(nb, km=km, kernel_name="python3", timeout=TIMEOUT_PER_CELL_S, allow_errors=False,
                            resources={"metadata": {"path": str(tmp_path)}})  # the kernel's cwd
    client.execute(env=env)  # raises CellExecutionError naming the cell on any error

    assert f"KERNEL {sys.executable}" in _text(nb.cells[-1])
    first = _text(_cell(nb, "HJAX_NOTEBOOK_TINY"))
    assert "point_mass: 4 epochs x 8 envs" in first, first

    trained = _text(_cell(nb, 'run_dir=OUT / "her"'))
    assert "point_mass her=future: eval success" in trained and "per seed (4 seeds)" in trained, trained
    assert "Result(env='point_mass'" in trained and "seeds=4" in trained, trained

    assert _images(_cell(nb, "hjax.plot(her)")) == 1  # the Figure shows inline
    verdicts = ("silent", "hindsight_only", "learning", "solved", "unstable", "collapsed")
    diagnosis = _text(_cell(nb, "hjax.diagnose(her)"))
    assert "verdict: " in diagnosis and any(f"verdict: {v}" in diagnosis for v in verdicts), diagnosis
    assert "verdicts per seed:" in diagnosis and "1 success per N training episodes" in diagnosis

    without = _text(_cell(nb, 'her_strategy="none"'))
    assert "point_mass her=none: eval success" in without, without
    assert any(f"verdict without HER: {v}" in without for v in verdicts), without
    compare = _cell(nb, "plot_runs(")
    assert _images(compare) == 1 and "no HER: final eval success per seed" in _text(compare)

    rollout = _text(_cell(nb, "hjax.load_policy("))
    assert "loaded policy, seed 0: success at the last step in" in rollout and "of 200 new episodes" in rollout
    evaluation = _text(_cell(nb, "hjax.evaluate("))
    assert "'success_rate':" in evaluation and "'episodes': 200" in evaluation, evaluation

    for name in ("her", "none"):  # the notebook wrote its runs where it was told, nowhere else
        assert (tmp_path / "runs" / name / "config.json").is_file()
