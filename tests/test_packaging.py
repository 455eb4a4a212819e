"""The installed package: `pip install hjax` puts everything under `hjax` (envs/ installs as
`hjax.envs`), never a top-level `envs` module that would clash with another project's."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_installs_envs_under_hjax_only(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), str(ROOT)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    (wheel,) = tmp_path.glob("hjax-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"hjax"}, tops
    source = sorted(p.name for p in (ROOT / "envs").glob("*.py"))
    assert sorted(n.split("/")[-1] for n in names if n.startswith("hjax/envs/")) == source


def test_no_top_level_envs_module_outside_the_checkout(tmp_path):
    """From any other folder, `hjax.envs` imports and `envs` does not (with the caller's
    PYTHONPATH removed: one naming the checkout makes its `envs/` folder importable by design)."""
    code = ("import importlib.util, hjax.envs\n"
            "assert importlib.util.find_spec('envs') is None, importlib.util.find_spec('envs')\n"
            "print(hjax.envs.make('point_mass').action_size)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "2"
