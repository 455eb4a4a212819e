"""Progress reports: a redrawn tqdm bar on a terminal, one plain line per chunk anywhere else."""

import io
import re

import pytest

import hjax
from hjax import progress

TINY = dict(num_envs=4, num_epochs=6, chunk_epochs=2, grad_steps_per_epoch=4, hidden_sizes=(16, 16),
            batch_size=32, buffer_episodes=16, num_eval_envs=4)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_non_terminal_output_gets_one_plain_line_per_chunk(capsys, monkeypatch):
    monkeypatch.delenv(progress.ENV_VAR, raising=False)
    cfg = hjax.Config(**TINY)
    result = hjax.train(cfg, verbose=False)  # the default progress_bar=True, under pytest's non-tty capture
    out, err = capsys.readouterr()
    assert "\r" not in out + err
    reports = [line for line in out.splitlines() if " epoch " in line]
    assert len(reports) == cfg.num_epochs // cfg.chunk_epochs
    success = result.metrics["eval/success_rate"]
    for i, line in enumerate(reports):
        epoch = (i + 1) * cfg.chunk_epochs
        m = re.fullmatch(r"point_mass: epoch (\d+)/6  env steps (\d+)/(\d+)  eval success ([\d.]+)  "
                         r"steps/s [\d,]+  elapsed [\d.]+s", line)
        assert m, line
        assert int(m[1]) == epoch
        assert int(m[2]) == epoch * cfg.env_steps_per_epoch == int(result.metrics["env_steps"][epoch - 1])
        assert int(m[3]) == cfg.num_epochs * cfg.env_steps_per_epoch
        assert float(m[4]) == pytest.approx(float(success[epoch - 1]), abs=5e-4)
    assert out.splitlines()[0].startswith("point_mass: compiled in ")


def test_terminal_bar_redraws_with_carriage_returns():
    stream = _Terminal()
    cfg = hjax.Config(**TINY)
    bar = progress.Progress("bar", cfg, None, 0, 1.0, stream=stream)
    for epoch in (2, 4, 6):
        bar.update(epoch, {"eval/success_rate": 0.5}, run_seconds=float(epoch))
    bar.close()
    assert "\r" in stream.getvalue() and "eval success=0.50" in stream.getvalue()


def test_lines_report_multi_seed_env_steps():
    stream = io.StringIO()
    cfg = hjax.Config(**TINY)
    lines = progress.Progress("lines", cfg, 3, 2, 1.0, stream=stream)  # resumed at epoch 2, 3 seeds
    lines.update(4, {"eval/success_rate": 0.25}, run_seconds=2.0)
    report = stream.getvalue().splitlines()[-1]
    per_epoch = cfg.env_steps_per_epoch  # per seed, as the metrics and hjax.summary count them
    assert f"epoch 4/6  env steps {4 * per_epoch}/{6 * per_epoch} per seed (3 seeds)  eval success 0.250" in report
    assert f"steps/s per seed {2 * per_epoch / 2.0:,.0f}" in report


def test_mode_follows_the_stream_and_the_override(monkeypatch):
    monkeypatch.delenv(progress.ENV_VAR, raising=False)
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert progress.resolve_mode(True) == progress.resolve_mode("auto") == "lines"
    monkeypatch.setattr("sys.stderr", _Terminal())
    assert progress.resolve_mode(True) == "bar"
    assert progress.resolve_mode("lines") == "lines" and progress.resolve_mode(False) == "off"
    monkeypatch.setenv(progress.ENV_VAR, "lines")
    assert progress.resolve_mode(True) == "lines"
    assert progress.resolve_mode("bar") == "bar"  # an explicit choice wins over the variable
    monkeypatch.setenv(progress.ENV_VAR, "off")
    assert progress.resolve_mode(True) == "off"
    monkeypatch.setenv(progress.ENV_VAR, "fancy")
    with pytest.raises(ValueError, match="HJAX_PROGRESS='fancy'.*auto, bar, lines, off"):
        progress.resolve_mode(True)


def test_invalid_progress_bar_is_refused_before_compiling():
    with pytest.raises(ValueError, match="progress_bar='fancy'.*'lines'"):
        hjax.train(hjax.Config(**TINY), progress_bar="fancy")
    with pytest.raises(ValueError, match="progress_bar=2"):
        hjax.train(hjax.Config(**TINY), progress_bar=2)
