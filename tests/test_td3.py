"""TD3 pieces against NumPy: target, losses, Polyak, the delayed schedule; normaliser; counter."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import hjax
from hjax import normalizer as norm_lib
from hjax.counter import Counter, to_int
from hjax.td3 import make_td3, polyak, smoothed_target_action, td3_target
from learner_refs import np_actor as _np_actor
from learner_refs import np_twin_critic as _np_critic
from learner_refs import random_batch

IN, ACT, B = 6, 2, 32
GAMMA, LOW, HIGH = 0.98, -50.0, 0.0


def _td3(**overrides):
    kw = dict(hidden_sizes=(16, 16), action_size=ACT, gamma=GAMMA, tau=0.05, actor_lr=1e-3,
              critic_lr=1e-3, policy_delay=2, target_noise=0.2, target_noise_clip=0.5, action_l2=1.0,
              exploration_noise=0.2, target_bounds=(LOW, HIGH))
    kw.update(overrides)
    return make_td3(**kw)


def _batch(key):
    return random_batch(key, B, IN, ACT)


def test_td3_target_matches_numpy():
    rng = np.random.default_rng(0)
    r = -(rng.random(100) < 0.5).astype(np.float32)
    q1, q2 = rng.normal(-20, 30, 100).astype(np.float32), rng.normal(-20, 30, 100).astype(np.float32)
    expected = np.clip(r + GAMMA * np.minimum(q1, q2), LOW, HIGH)
    np.testing.assert_allclose(td3_target(r, q1, q2, GAMMA, LOW, HIGH), expected, rtol=1e-6)
    assert (expected == LOW).any() and (expected == HIGH).any()  # both clips exercised


def test_target_smoothing_matches_numpy():
    rng = np.random.default_rng(1)
    a = rng.uniform(-1, 1, (50, ACT)).astype(np.float32)
    eps = rng.normal(0, 3, (50, ACT)).astype(np.float32)
    expected = np.clip(a + np.clip(0.2 * eps, -0.5, 0.5), -1, 1)
    np.testing.assert_allclose(smoothed_target_action(a, eps, 0.2, 0.5), expected, rtol=1e-6)


def test_critic_and_actor_losses_match_numpy():
    td3 = _td3()
    state = td3.init(jax.random.PRNGKey(0), IN, ACT)
    # Distinct targets, so the test sees which parameters each loss uses.
    other = td3.init(jax.random.PRNGKey(1), IN, ACT)
    batch = _batch(jax.random.PRNGKey(2))
    noise = jax.random.normal(jax.random.PRNGKey(3), (B, ACT))
    loss, q1 = td3.critic_loss(state.critic_params, other.actor_params, other.critic_params, batch, noise)

    x, x2, a, r = (np.asarray(v) for v in (batch.inputs, batch.next_inputs, batch.action, batch.reward))
    a2 = np.clip(_np_actor(other.actor_params, x2) + np.clip(0.2 * np.asarray(noise), -0.5, 0.5), -1, 1)
    t1, t2 = _np_critic(other.critic_params, x2, a2)
    y = np.clip(r + GAMMA * np.minimum(t1, t2), LOW, HIGH)
    c1, c2 = _np_critic(state.critic_params, x, a)
    np.testing.assert_allclose(loss, np.mean((c1 - y) ** 2) + np.mean((c2 - y) ** 2), rtol=1e-4)
    np.testing.assert_allclose(q1, c1, rtol=1e-4, atol=1e-5)

    actor_loss, action = td3.actor_loss(state.actor_params, other.critic_params, batch)
    pi = _np_actor(state.actor_params, x)
    expected = -np.mean(_np_critic(other.critic_params, x, pi)[0]) + 1.0 * np.mean(pi ** 2)
    np.testing.assert_allclose(actor_loss, expected, rtol=1e-4)
    np.testing.assert_allclose(action, pi, rtol=1e-4, atol=1e-6)


def test_critic_gradient_matches_finite_difference():
    """The loss we differentiate is the loss we report: a directional finite difference agrees."""
    td3 = _td3()
    state = td3.init(jax.random.PRNGKey(0), IN, ACT)
    batch, noise = _batch(jax.random.PRNGKey(4)), jax.random.normal(jax.random.PRNGKey(5), (B, ACT))
    f = lambda p: td3.critic_loss(p, state.target_actor_params, state.target_critic_params, batch, noise)[0]  # noqa: E731
    grads = jax.grad(f)(state.critic_params)
    direction = jax.tree.map(lambda g: g / (optax.tree.norm(grads) + 1e-12), grads)
    eps = 1e-3
    plus = f(jax.tree.map(lambda p, d: p + eps * d, state.critic_params, direction))
    minus = f(jax.tree.map(lambda p, d: p - eps * d, state.critic_params, direction))
    np.testing.assert_allclose((plus - minus) / (2 * eps), optax.tree.norm(grads), rtol=2e-2)


@pytest.mark.parametrize("tau", [0.0, 1.0, 0.3])
def test_polyak(tau):
    td3 = _td3(tau=tau)
    state = td3.init(jax.random.PRNGKey(0), IN, ACT)
    state = state.replace(critic_params=td3.init(jax.random.PRNGKey(9), IN, ACT).critic_params)
    new, _ = td3.actor_step(state, _batch(jax.random.PRNGKey(1)), jax.random.PRNGKey(2))
    for target_old, online_new, target_new in (
            (state.target_actor_params, new.actor_params, new.target_actor_params),
            (state.target_critic_params, new.critic_params, new.target_critic_params)):
        expected = jax.tree.map(lambda t, o: (1 - tau) * np.asarray(t) + tau * np.asarray(o), target_old, online_new)
        jax.tree.map(lambda e, g: np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-7), expected, target_new)
    if tau == 1.0:
        jax.tree.map(np.testing.assert_array_equal, new.target_actor_params, new.actor_params)
    if tau == 0.0:
        jax.tree.map(np.testing.assert_array_equal, new.target_actor_params, state.target_actor_params)
    chex_tree = polyak({"a": jnp.ones(2)}, {"a": jnp.zeros(2)}, 0.25)
    np.testing.assert_allclose(chex_tree["a"], 0.75)


def _adam_count(opt_state):
    return int(next(s.count for s in opt_state if isinstance(s, optax.ScaleByAdamState)))


@pytest.mark.parametrize("delay,steps", [(1, 4), (3, 9)])
def test_policy_delay_schedule(delay, steps):
    """Exactly one actor (and target) step per `policy_delay` critic steps, with no counter cond."""
    cfg = hjax.Config(num_envs=4, num_epochs=1, grad_steps_per_epoch=steps, policy_delay=delay,
                      hidden_sizes=(8,), batch_size=16, buffer_episodes=8, num_eval_envs=2)
    trainer = hjax.make_trainer(cfg)
    state = trainer.init(jax.random.PRNGKey(0))
    new, metrics = jax.jit(trainer.epoch)(state)
    assert _adam_count(new.learner.critic_opt_state) == steps
    assert _adam_count(new.learner.actor_opt_state) == steps // delay
    assert int(to_int(metrics["grad_steps"])) == steps


# ---- normaliser ------------------------------------------------------------------------------

def test_normalizer_matches_numpy_over_concatenated_data():
    rng = np.random.default_rng(2)
    chunks = [rng.normal(3.0, 2.0, (n, 4)).astype(np.float32) * [1, 10, 0.1, 1] for n in (5, 1, 300, 64)]
    chunks.append(np.full((7, 4), 1e3, np.float32))  # a far-off batch: the merge must stay exact
    state = norm_lib.NormalizerState.create(4)
    update = jax.jit(norm_lib.update)
    for c in chunks:
        state = update(state, c)
    data = np.concatenate(chunks)
    np.testing.assert_allclose(state.mean, data.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(state.std, np.maximum(data.std(axis=0), norm_lib.STD_EPS), rtol=1e-4)
    assert float(state.count) == len(data)
    x = rng.normal(0, 100, (10, 4)).astype(np.float32)
    expected = np.clip((x - data.mean(0)) / np.maximum(data.std(0), 1e-2), -5, 5)
    np.testing.assert_allclose(norm_lib.normalize(state, x, 5.0), expected, rtol=1e-4, atol=1e-5)


def test_normalizer_before_data_and_constant_data():
    state = norm_lib.NormalizerState.create(2)
    np.testing.assert_array_equal(state.std, [1.0, 1.0])
    state = norm_lib.update(state, jnp.ones((10, 2)))
    np.testing.assert_allclose(state.std, [norm_lib.STD_EPS] * 2)  # floored, never divides by 0
    assert np.isfinite(np.asarray(norm_lib.normalize(state, jnp.zeros((1, 2)), 5.0))).all()


# ---- counter ---------------------------------------------------------------------------------

def test_counter_carries_past_2_32():
    c = Counter.create(2**32 - 3)
    add = jax.jit(lambda c: c.add(2_000))
    c = add(c)
    assert int(to_int(c)) == 2**32 - 3 + 2_000
    assert int(c.hi) == 1
    c = Counter.create(2**40 + 5)
    for _ in range(3):
        c = add(c)
    assert int(to_int(c)) == 2**40 + 5 + 6_000
    with pytest.raises(ValueError, match="value=-1"):
        Counter.create(-1)
