"""The docs site builds with `mkdocs build --strict` (issue 28): every page in the nav, every link
and anchor resolving, every API reference found, and the configuration page's tables generated
from the code. A copy of the site with one thing broken must fail the same build."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hjax.config import Config
from hjax.presets import PRESETS

ROOT = Path(__file__).resolve().parents[1]
# mkdocs, mkdocs-material and mkdocstrings[python] are in the test extra: CI fails, not skips, without them.


def build(config_file: Path, site_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's banner about its successor
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config_file),
                           "--site-dir", str(site_dir)],
                          cwd=config_file.parent, env=env, capture_output=True, text=True, timeout=300)


def text_of(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    site_dir = tmp_path_factory.mktemp("site")
    done = build(ROOT / "mkdocs.yml", site_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    return site_dir


def test_the_site_builds_strictly_with_every_page(site):
    for page in ("index.html", "getting_started/index.html", "configuration/index.html", "learners/index.html",
                 "her/index.html", "diagnosing/index.html", "environments/index.html", "custom_env/index.html",
                 "cli/index.html", "devices/index.html", "performance/index.html", "troubleshooting/index.html",
                 "results/index.html", "api/index.html"):
        assert (site / page).is_file(), page


def test_the_configuration_tables_are_generated_from_the_code(site):
    html = (site / "configuration" / "index.html").read_text()
    assert "<!-- config-table -->" not in html and "<!-- presets-table -->" not in html
    table = html[html.index('id="every-field"'):html.index('id="presets"')]
    for field in dataclasses.fields(Config):
        assert f"<code>{field.name}</code>" in table, field.name
    assert "Parallel training envs; each plays one episode per epoch." in text_of(table)  # a field docstring
    presets = text_of(html[html.index('id="presets"'):])
    for name in PRESETS:
        assert name in presets and Config.preset_note(name).split(":")[0] in presets, name


def test_the_api_pages_document_the_public_functions(site):
    pages = {p: (site / "api" / p / "index.html").read_text() for p in ("config", "training", "runs", "envs")}
    expected = {
        "config": ["hjax.config.Config", "hjax.config.Config.preset"],
        "training": ["hjax.loop.train", "hjax.loop.compile_program", "hjax.step.make_trainer", "hjax.step.make_train"],
        "runs": ["hjax.result.Result", "hjax.result.summary", "hjax.loading.load_run", "hjax.loading.load_policy",
                 "hjax.loading.evaluate", "hjax.diagnosis.diagnose", "hjax.diagnosis.Diagnosis",
                 "hjax.plotting.plot"],
        # hjax.envs is the top-level envs/ folder, mapped in by docs/hooks/griffe_envs.py
        "envs": ["hjax.envs.make", "hjax.envs.register", "hjax.envs.goal_env.GoalEnv",
                 "hjax.envs.goal_env.GoalEnv._reset_goal_env"],
    }
    for page, ids in expected.items():
        for anchor in ids:
            assert f'id="{anchor}"' in pages[page], (page, anchor)
    assert "Train <code>config</code> and return a <code>Result</code>" in pages["training"]  # docstrings rendered
    assert "load_policy" in pages["runs"]


BROKEN = {  # case: (page, what is appended to it, what the build's report must name)
    "a link to a missing page": ("getting_started.md", "\nSee [the missing page](no_such_page.md).\n", "no_such_page.md"),
    "a link to a missing anchor": ("getting_started.md", "\nSee [a section](configuration.md#no-such-section).\n",
                                   "no-such-section"),
    "a missing API reference": ("api/runs.md", "\n::: hjax.loading.no_such_function\n", "no_such_function"),
    "a page outside the nav": ("orphan.md", "# Orphan\n", "orphan.md"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_site_fails_the_strict_build(tmp_path, case):
    """The check can fail: the same build of a copy with one thing broken exits non-zero, naming it."""
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", tmp_path / "docs", ignore=shutil.ignore_patterns("__pycache__"))
    for package in ("hjax", "envs"):  # mkdocstrings reads the sources beside mkdocs.yml (`paths: [.]`)
        (tmp_path / package).symlink_to(ROOT / package, target_is_directory=True)
    page, addition, named = BROKEN[case]
    path = tmp_path / "docs" / page
    path.write_text((path.read_text() if path.exists() else "") + addition)
    done = build(tmp_path / "mkdocs.yml", tmp_path / "site")
    report = done.stdout + done.stderr
    assert done.returncode != 0, f"{case}: the strict build passed\n{report}"
    assert named in report and ("WARNING" in report or "ERROR" in report), report
