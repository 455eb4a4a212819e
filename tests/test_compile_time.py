"""What keeps compile time down without changing the math: the fused update traces the critic step
once and equals a plain Python loop of HER samples and learner steps on the documented key
schedule; `hjax.train` traces the init program once. (Compile times themselves are measured in
benchmarks/compile_time.py, never asserted here.)"""

import importlib

import jax
import numpy as np
import pytest

import hjax
from hjax import her, program_cache
from hjax import normalizer as norm_lib
from hjax.learner import Batch

train_module = importlib.import_module("hjax.loop")
TINY = dict(num_envs=4, num_epochs=1, hidden_sizes=(8,), batch_size=16, buffer_episodes=8, num_eval_envs=2)


def _filled_state(cfg):
    """A state whose buffer and normalisers hold one round of episodes (so HER has data)."""
    trainer = hjax.make_trainer(cfg)
    state, _ = jax.jit(trainer.collect)(trainer.init(jax.random.PRNGKey(0)), jax.random.PRNGKey(1))
    return trainer, state


def _reference_update(cfg, trainer, state, key):
    """The update as a Python loop over groups and steps (the schedule `update` documents):
    group g uses keys = split(split(key, groups)[g], delay + 2); critic step i < delay - 1 samples
    and steps with split(keys[i]); the last samples with keys[delay - 1], steps with keys[delay],
    and the actor step takes keys[delay + 1] and the last batch. A sample key k reaches the only
    data shard as split(k, 1)[0]."""
    learner, env, delay = trainer.learner, cfg.make_env(), trainer.learner.policy_delay
    shard = jax.tree.map(lambda x: x[0], state.buffer)  # one data shard on one device

    def norm(o, g):
        return np.concatenate([norm_lib.normalize(state.obs_norm, o, cfg.obs_clip),
                               norm_lib.normalize(state.goal_norm, g, cfg.obs_clip)], axis=-1)

    def batch_for(key_sample):  # the one shard samples with split(key_sample, 1)[0]
        tr, _ = her.sample(jax.random.split(key_sample, 1)[0], shard, cfg.batch_size, cfg.her_strategy,
                           cfg.replay_k, env.compute_reward, env.is_success)
        return Batch(inputs=norm(tr.observation, tr.goal), next_inputs=norm(tr.next_observation, tr.goal),
                     action=tr.action, reward=tr.reward)

    critic_step, actor_step = jax.jit(learner.critic_step), jax.jit(learner.actor_step)
    ls = state.learner
    for key_group in jax.random.split(key, cfg.grad_steps_per_epoch // delay):
        keys = jax.random.split(key_group, delay + 2)
        for i in range(delay - 1):
            key_sample, key_critic = jax.random.split(keys[i])
            ls, _ = critic_step(ls, batch_for(key_sample), key_critic)
        batch = batch_for(keys[delay - 1])
        ls, _ = critic_step(ls, batch, keys[delay])
        ls, _ = actor_step(ls, batch, keys[delay + 1])
    return ls


@pytest.mark.parametrize("algorithm,delay,steps", [("td3", 3, 6), ("td3", 2, 4), ("ddpg", 1, 3)])
def test_update_equals_a_python_loop_of_steps(algorithm, delay, steps):
    extra = {"policy_delay": delay} if algorithm == "td3" else {}
    cfg = hjax.Config(algorithm=algorithm, grad_steps_per_epoch=steps, **extra, **TINY)
    trainer, state = _filled_state(cfg)
    key = jax.random.PRNGKey(7)
    fused, _ = jax.jit(trainer.update)(state, key)
    expected = _reference_update(cfg, trainer, state, key)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), fused, expected)
    moved = jax.tree.map(lambda a, b: not np.array_equal(a, b), state.learner.actor_params, fused.actor_params)
    assert any(jax.tree.leaves(moved))  # the actor did step: the comparison is not of untouched params


@pytest.mark.parametrize("algorithm", ["td3", "sac"])
def test_update_traces_the_critic_step_once(monkeypatch, algorithm):
    calls = {"critic_step": 0}
    make_learner = hjax.step.make_learner

    def counting_learner(config, traced=None):
        learner = make_learner(config, traced)

        def critic_step(*args):
            calls["critic_step"] += 1
            return learner.critic_step(*args)

        return learner._replace(critic_step=critic_step)

    monkeypatch.setattr(hjax.step, "make_learner", counting_learner)
    cfg = hjax.Config(algorithm=algorithm, grad_steps_per_epoch=4, **TINY)
    trainer = hjax.make_trainer(cfg)
    state = jax.eval_shape(trainer.init, jax.random.PRNGKey(0))
    jax.make_jaxpr(trainer.update)(state, jax.random.PRNGKey(1))
    assert calls["critic_step"] == 1


def test_train_traces_init_once_for_the_program(monkeypatch):
    """One `make_trainer` per `train` call, handed on: init is traced by the memory estimate
    (`jax.eval_shape`, nothing compiled) and once for the program, never more."""
    calls = {"init": 0}
    make_trainer = train_module.make_trainer

    def counting_trainer(config, mesh=None):
        trainer = make_trainer(config, mesh)

        def init(key):
            calls["init"] += 1
            return trainer.init(key)

        return trainer._replace(init=init)

    monkeypatch.setattr(train_module, "make_trainer", counting_trainer)
    monkeypatch.setattr(program_cache, "folder", lambda: None)  # traced here, not loaded from an earlier run
    cfg = hjax.Config(grad_steps_per_epoch=2, num_devices=1, **TINY).replace(hidden_sizes=(6,))  # a new program
    result = hjax.train(cfg, progress_bar=False, verbose=False)
    assert calls["init"] == 2  # the memory estimate's eval_shape, then the program
    hjax.train(cfg.replace(seed=1), progress_bar=False, verbose=False)  # the compiled program again
    assert calls["init"] == 3  # only the memory estimate traced it
    assert int(result.metrics["env_steps"][-1]) == cfg.env_steps_per_epoch
