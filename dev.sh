#!/usr/bin/env bash
# One entry point for a fresh clone; each command sets up .venv itself when it is missing or stale.
#   bash dev.sh demo [ARGS]   the main job: a short point_mass training run on CPU (prints, plots)
#   bash dev.sh test [ARGS]   the test suite CI runs (slow learning checks excluded), on every core
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
stamp=.venv/.hjax-installed
if [ ! -x .venv/bin/python ] || [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  "$PY" -c 'import sys; assert sys.version_info >= (3, 11), "hjax needs Python >= 3.11, found " + sys.version' 
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[test]"
  touch "$stamp"
fi
# Gymnasium-Robotics' Fetch envs, the gripper tasks' reference (hjax.fetch), live in a virtual
# environment of their own beside .venv; the harness creates it on first use.
export HJAX_FETCH_VENV=${HJAX_FETCH_VENV:-$PWD/.venv-fetch}
cmd=${1:-}
shift || true
case "$cmd" in
  demo) exec .venv/bin/python -m hjax.demo "$@" ;;
  # One pytest-xdist worker per usable core (at most 4: each holds its compiled programs, up to a
  # few GiB), whole test files per worker so a file's compiled fixtures are built once; `-n 0`
  # among ARGS runs everything in this one process.
  test) exec .venv/bin/python -m pytest -q -m "not slow" -n auto --maxprocesses 4 --dist loadfile "$@" ;;
  *) echo "usage: bash dev.sh {demo|test} [ARGS]" >&2; exit 2 ;;
esac
