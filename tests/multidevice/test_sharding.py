"""Multi-device data parallelism on simulated CPU devices. Run through tests/test_sharding.py,
which starts pytest here with XLA_FLAGS=--xla_force_host_platform_device_count=4."""

import jax
import numpy as np
import pytest

import hjax
from hjax import sharding
from hjax.loop import resolve

pytestmark = pytest.mark.skipif(jax.device_count() < 4, reason="needs 4 (simulated) devices")

TINY = dict(num_envs=8, num_epochs=4, chunk_epochs=2, grad_steps_per_epoch=4, hidden_sizes=(16, 16),
            batch_size=32, buffer_episodes=16, num_eval_envs=8, data_shards=4)


def tiny(**kw):
    return hjax.Config(**{**TINY, **kw})


def _close(a, b):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=2e-4, atol=2e-5), a, b)


@pytest.mark.parametrize("algorithm", ["td3", "sac"])
def test_four_devices_equal_one_device_with_the_same_layout(algorithm):
    one = hjax.train(tiny(num_devices=1, algorithm=algorithm), progress_bar=False)
    four = hjax.train(tiny(num_devices=4, algorithm=algorithm), progress_bar=False)
    for name in ("loss/critic", "q/mean", "train/final_distance", "eval/final_distance", "env_steps"):
        np.testing.assert_allclose(four.metrics[name].astype(float), one.metrics[name].astype(float),
                                   rtol=2e-4, atol=2e-5, err_msg=name)
    _close(four.state.learner, one.state.learner)
    assert len(four.state.buffer.data.observation.sharding.device_set) == 4
    assert len(one.state.buffer.data.observation.sharding.device_set) == 1


def test_default_uses_all_devices_with_one_shard_each():
    cfg = resolve(hjax.Config(**{**TINY, "data_shards": None}), None)
    assert cfg.data_shards == 4
    lay = sharding.layout(cfg, None)
    assert lay.mesh is not None and lay.mesh.shape == {"seeds": 1, "data": 4}


def test_each_device_shard_holds_its_own_envs_data():
    cfg = tiny(num_devices=4, num_epochs=2)
    result = hjax.train(cfg, progress_bar=False)
    obs = result.state.buffer.data.observation  # (shards, capacity/shards, T+1, obs_dim)
    assert obs.shape[0] == 4
    shards = sorted(obs.addressable_shards, key=lambda s: s.index[0].start)
    assert [s.index[0] for s in shards] == [slice(i, i + 1) for i in range(4)]
    # Replay the collection on one device: env block i (envs 2i, 2i+1) must be in shard i.
    trainer = hjax.make_trainer(cfg)
    state = trainer.init(jax.random.PRNGKey(cfg.seed))
    key, key_rollout, _, _ = jax.random.split(state.key, 4)
    episodes, _ = trainer.rollout(state, key_rollout, cfg.num_envs, True)
    for i, shard in enumerate(shards):
        np.testing.assert_allclose(np.asarray(shard.data)[0, :2], np.asarray(episodes.observation)[2 * i:2 * i + 2],
                                   rtol=1e-5, atol=1e-6)


def test_seeds_spread_over_a_seed_axis_equal_seeds_alone():
    cfg = tiny(num_devices=2, seed_devices=2, data_shards=2, num_epochs=2)
    multi = hjax.train(cfg, num_seeds=2, progress_bar=False)
    assert multi.state.buffer.data.observation.sharding.mesh.shape == {"seeds": 2, "data": 2}
    alone = hjax.train(cfg.replace(num_devices=1, seed_devices=1, seed=1), progress_bar=False)
    np.testing.assert_allclose(multi.metrics["loss/critic"][1], alone.metrics["loss/critic"], rtol=2e-4, atol=2e-5)


def test_checkpoint_written_on_four_devices_resumes_on_one_and_on_four(tmp_path):
    cfg = tiny(num_devices=4)
    straight = hjax.train(cfg, progress_bar=False)
    for devices in (4, 1):
        run = tmp_path / f"to{devices}"
        hjax.train(cfg.replace(num_epochs=2), run_dir=run, save_buffer=True, progress_bar=False)
        resumed = hjax.train(cfg.replace(num_devices=devices), resume=run, save_buffer=True, progress_bar=False)
        for name in ("loss/critic", "eval/final_distance"):
            np.testing.assert_allclose(resumed.metrics[name], straight.metrics[name], rtol=2e-4, atol=2e-5)
        _close(resumed.state.learner, straight.state.learner)


def test_layout_errors_name_the_field():
    with pytest.raises(ValueError, match="invalid num_devices=8 .* <= 4 devices"):
        sharding.layout(tiny(num_devices=8, data_shards=8), None)
    with pytest.raises(ValueError, match="invalid data_shards=2; allowed: a multiple of the 4 data devices"):
        sharding.layout(tiny(num_devices=4, data_shards=2), None)
    with pytest.raises(ValueError, match="invalid seed_devices=2; allowed: a divisor of num_seeds=3"):
        sharding.layout(tiny(seed_devices=2), 3)
    with pytest.raises(ValueError, match="invalid data_shards=3; allowed: a divisor of num_envs=8"):
        tiny(data_shards=3)
