"""DDPG and SAC pieces against NumPy: targets, losses, the tanh-Gaussian density, the temperature,
Polyak and the every-step schedule."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import stats

import hjax
from hjax.ddpg import ddpg_target, make_ddpg
from hjax.sac import alpha_loss, make_sac, sac_target, tanh_gaussian_sample
from hjax.step import SAC_METRIC_NAMES
from learner_refs import np_actor, np_critic, np_gaussian_actor, np_twin_critic, random_batch

IN, ACT, B = 6, 2, 32
GAMMA, LOW, HIGH = 0.98, -50.0, 0.0


def _ddpg(**overrides):
    kw = dict(hidden_sizes=(16, 16), action_size=ACT, gamma=GAMMA, tau=0.05, actor_lr=1e-3,
              critic_lr=1e-3, action_l2=1.0, exploration_noise=0.2, target_bounds=(LOW, HIGH))
    return make_ddpg(**{**kw, **overrides})


def _sac(**overrides):
    kw = dict(hidden_sizes=(16, 16), action_size=ACT, gamma=GAMMA, tau=0.05, actor_lr=1e-3,
              critic_lr=1e-3, alpha_lr=1e-3, init_alpha=0.5, target_entropy=None, target_bounds=(LOW, HIGH))
    return make_sac(**{**kw, **overrides})


def _close(actual, expected, rtol=1e-4, atol=1e-5):
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=rtol, atol=atol)


# ---- DDPG ------------------------------------------------------------------------------------

def test_ddpg_target_matches_numpy():
    rng = np.random.default_rng(0)
    r = -(rng.random(100) < 0.5).astype(np.float32)
    q = rng.normal(-20, 30, 100).astype(np.float32)
    expected = np.clip(r + GAMMA * q, LOW, HIGH)
    _close(ddpg_target(r, q, GAMMA, LOW, HIGH), expected, rtol=1e-6, atol=0)
    assert (expected == LOW).any() and (expected == HIGH).any()  # both clips exercised


def test_ddpg_losses_match_numpy():
    ddpg = _ddpg()
    state = ddpg.init(jax.random.PRNGKey(0), IN, ACT)
    other = ddpg.init(jax.random.PRNGKey(1), IN, ACT)  # distinct targets: which params each loss uses
    batch = random_batch(jax.random.PRNGKey(2), B, IN, ACT)
    loss, q = ddpg.critic_loss(state.critic_params, other.actor_params, other.critic_params, batch)

    x, x2, a, r = (np.asarray(v) for v in (batch.inputs, batch.next_inputs, batch.action, batch.reward))
    y = np.clip(r + GAMMA * np_critic(other.critic_params, x2, np_actor(other.actor_params, x2)), LOW, HIGH)
    c = np_critic(state.critic_params, x, a)
    _close(loss, np.mean((c - y) ** 2))
    _close(q, c)

    actor_loss, action = ddpg.actor_loss(state.actor_params, other.critic_params, batch)
    pi = np_actor(state.actor_params, x)
    _close(actor_loss, -np.mean(np_critic(other.critic_params, x, pi)) + 1.0 * np.mean(pi ** 2))
    _close(action, pi, atol=1e-6)


def test_ddpg_updates_actor_and_targets_every_step():
    """One critic step then one actor step per batch (no delay); targets move by Polyak each time."""
    tau = 0.3
    ddpg = _ddpg(tau=tau)
    assert ddpg.policy_delay == 1
    state = ddpg.init(jax.random.PRNGKey(0), IN, ACT)
    critic_step, actor_step = jax.jit(ddpg.critic_step), jax.jit(ddpg.actor_step)
    for i in range(3):
        batch = random_batch(jax.random.PRNGKey(10 + i), B, IN, ACT)
        old = state
        state, m_critic = critic_step(state, batch, jax.random.PRNGKey(20 + i))
        state, m_actor = actor_step(state, batch, jax.random.PRNGKey(30 + i))
        assert np.isfinite(m_critic["loss/critic"]) and np.isfinite(m_actor["loss/actor"])
        for online, target_old, target_new in ((state.actor_params, old.target_actor_params, state.target_actor_params),
                                               (state.critic_params, old.target_critic_params, state.target_critic_params)):
            jax.tree.map(lambda o, t, n: _close(n, (1 - tau) * np.asarray(t) + tau * np.asarray(o), 1e-6, 1e-7),
                         online, target_old, target_new)
        changed = jax.tree.map(lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))), old.actor_params, state.actor_params)
        assert all(jax.tree.leaves(changed))  # the actor moved at this very step


def test_ddpg_critic_step_ignores_the_key():
    """No target smoothing: the critic update is a function of the batch only."""
    ddpg = _ddpg()
    state = ddpg.init(jax.random.PRNGKey(0), IN, ACT)
    batch = random_batch(jax.random.PRNGKey(1), B, IN, ACT)
    a, _ = ddpg.critic_step(state, batch, jax.random.PRNGKey(2))
    b, _ = ddpg.critic_step(state, batch, jax.random.PRNGKey(3))
    jax.tree.map(np.testing.assert_array_equal, a.critic_params, b.critic_params)


def test_gaussian_exploration_of_ddpg():
    ddpg = _ddpg(exploration_noise=0.2)
    state = ddpg.init(jax.random.PRNGKey(0), IN, ACT)
    x = jax.random.normal(jax.random.PRNGKey(1), (4000, IN))
    mean = np.asarray(ddpg.policy(state.actor_params, x))
    noisy = np.asarray(ddpg.explore(state.actor_params, x, jax.random.PRNGKey(2)))
    assert np.abs(noisy).max() <= 1.0
    inner = np.abs(mean) < 0.3  # away from the clip, the noise is N(0, 0.2^2)
    assert abs(np.std((noisy - mean)[inner]) - 0.2) < 0.01


# ---- SAC -------------------------------------------------------------------------------------

def test_tanh_gaussian_log_prob_matches_change_of_variables():
    """log pi(a) = log N(atanh(a); mean, std) - log|da/du|, computed from a in float64 with scipy."""
    rng = np.random.default_rng(0)
    mean = rng.normal(0, 2, (500, 3)).astype(np.float32)
    log_std = rng.uniform(-3, 1, (500, 3)).astype(np.float32)
    noise = rng.normal(0, 1, (500, 3)).astype(np.float32)
    action, log_prob = tanh_gaussian_sample(mean, log_std, noise)
    u = mean.astype(np.float64) + np.exp(log_std.astype(np.float64)) * noise
    keep = np.all(np.abs(u) < 7, axis=1)  # where float64 atanh(a) recovers u accurately
    assert keep.mean() > 0.8
    a = np.tanh(u)
    _close(action, a, rtol=1e-5, atol=1e-6)
    expected = np.sum(stats.norm.logpdf(np.arctanh(a), mean, np.exp(log_std.astype(np.float64)))
                      - np.log1p(-a ** 2), axis=1)
    _close(np.asarray(log_prob)[keep], expected[keep], rtol=1e-4, atol=2e-3)


def test_tanh_gaussian_density_integrates_to_one_and_stays_finite():
    """In 1-D the density of a = tanh(u) over (-1, 1) integrates to 1; saturated u stay finite."""
    for mean, log_std in ((0.0, 0.0), (1.5, -1.0), (-0.7, 0.5)):
        a = np.linspace(-1 + 1e-6, 1 - 1e-6, 400_001)
        noise = (np.arctanh(a) - mean) / np.exp(log_std)
        _, log_prob = jax.jit(tanh_gaussian_sample)(jnp.full((a.size, 1), mean), jnp.full((a.size, 1), log_std),
                                                   jnp.asarray(noise[:, None], jnp.float32))
        assert abs(np.trapezoid(np.exp(np.asarray(log_prob, np.float64)), a) - 1.0) < 2e-3
    _, log_prob = tanh_gaussian_sample(jnp.array([[30.0, -30.0]]), jnp.zeros((1, 2)), jnp.zeros((1, 2)))
    assert np.isfinite(log_prob).all()  # 1 - tanh(30)^2 is 0 in float32; the stable form is not


def test_sac_target_matches_numpy():
    rng = np.random.default_rng(1)
    r = -(rng.random(200) < 0.5).astype(np.float32)
    q1, q2 = (rng.normal(-20, 30, 200).astype(np.float32) for _ in range(2))
    logp = rng.normal(0, 3, 200).astype(np.float32)
    expected = np.clip(r + GAMMA * (np.minimum(q1, q2) - 0.3 * logp), LOW, HIGH)
    _close(sac_target(r, q1, q2, logp, 0.3, GAMMA, LOW, HIGH), expected, rtol=1e-5)
    assert (expected == LOW).any() and (expected == HIGH).any()


def _np_sample(actor_params, x, noise):
    mean, log_std = np_gaussian_actor(actor_params, x)
    u = mean + np.exp(log_std) * noise
    a = np.tanh(u)
    log_prob = np.sum(stats.norm.logpdf(u, mean, np.exp(log_std)) - np.log(1 - a ** 2), axis=1)
    return a, log_prob


def test_sac_losses_match_numpy():
    sac = _sac()
    state = sac.init(jax.random.PRNGKey(0), IN, ACT)
    other = sac.init(jax.random.PRNGKey(1), IN, ACT)  # distinct targets: which params each loss uses
    batch = random_batch(jax.random.PRNGKey(2), B, IN, ACT)
    noise = jax.random.normal(jax.random.PRNGKey(3), (B, ACT))
    log_alpha = jnp.log(0.3)
    loss, q1 = sac.critic_loss(state.critic_params, other.actor_params, other.critic_params, log_alpha, batch, noise)

    x, x2, a, r, eps = (np.asarray(v, np.float64) for v in (batch.inputs, batch.next_inputs, batch.action,
                                                            batch.reward, noise))
    a2, logp2 = _np_sample(other.actor_params, x2, eps)
    t1, t2 = np_twin_critic(other.critic_params, x2, a2)
    y = np.clip(r + GAMMA * (np.minimum(t1, t2) - 0.3 * logp2), LOW, HIGH)
    c1, c2 = np_twin_critic(state.critic_params, x, a)
    _close(loss, np.mean((c1 - y) ** 2) + np.mean((c2 - y) ** 2))
    _close(q1, c1)

    actor_loss, (mean_action, log_prob) = sac.actor_loss(state.actor_params, other.critic_params, log_alpha, batch,
                                                         noise)
    pi, logp = _np_sample(state.actor_params, x, eps)
    _close(actor_loss, np.mean(0.3 * logp - np.minimum(*np_twin_critic(other.critic_params, x, pi))))
    pi_mean, _ = _np_sample(state.actor_params, x, np.zeros_like(eps))  # tanh(mean): the deterministic action
    _close(mean_action, pi_mean, atol=1e-6)
    _close(log_prob, logp, atol=1e-4)
    # the actor step's action metrics read that deterministic action, not the samples
    _, m = sac.actor_step(state.replace(log_alpha=log_alpha), batch, jax.random.PRNGKey(9))
    _close(m["action/abs_mean"], np.mean(np.abs(pi_mean)), atol=1e-6)
    _close(m["action/saturation"], np.mean(np.abs(pi_mean) > 0.99), atol=1e-6)


def test_alpha_loss_matches_numpy():
    logp = np.array([-1.0, 0.5, 2.0], np.float32)
    _close(alpha_loss(jnp.log(0.2), logp, -2.0), -np.mean(np.log(0.2) * (logp - 2.0)), rtol=1e-6)
    grad = jax.grad(alpha_loss)(jnp.log(0.2), logp, -2.0)
    _close(grad, -np.mean(logp - 2.0), rtol=1e-6)  # d/d log_alpha = -(mean log pi + target)


@pytest.mark.parametrize("log_std_bias,direction", [(-6.0, +1), (0.0, -1)])
def test_temperature_moves_entropy_toward_target(log_std_bias, direction):
    """On a fixed policy, alpha rises while the entropy is below the target (-action_dim) and
    falls while it is above."""
    sac = _sac(actor_lr=1e-12, alpha_lr=1e-2)  # the policy (practically) does not move
    state = sac.init(jax.random.PRNGKey(0), IN, ACT)
    params = jax.tree.map(lambda p: p, state.actor_params)
    last = params["params"]["MLP_0"]["Dense_2"]  # mean 0, log std log_std_bias everywhere
    last["kernel"] = jnp.zeros_like(last["kernel"])
    last["bias"] = jnp.zeros_like(last["bias"]).at[ACT:].set(log_std_bias)
    state = state.replace(actor_params=params)
    batch = random_batch(jax.random.PRNGKey(1), 256, IN, ACT)
    step = jax.jit(sac.actor_step)
    alphas, entropies = [], []
    for i in range(10):
        state, m = step(state, batch, jax.random.PRNGKey(100 + i))
        alphas.append(float(m["policy/alpha"]))
        entropies.append(float(m["policy/entropy"]))
    assert np.sign(np.mean(entropies) - (-ACT)) == -direction  # the case is what it claims
    assert all(np.sign(np.diff([0.5] + alphas)) == direction)
    # Adam's first steps move log alpha by about alpha_lr each
    _close(np.log(alphas[-1]) - np.log(0.5), direction * 10 * 1e-2, rtol=0.05)


# ---- in the fused step -----------------------------------------------------------------------

TINY = dict(num_envs=4, num_epochs=2, grad_steps_per_epoch=5, hidden_sizes=(8,), batch_size=16,
            buffer_episodes=8, num_eval_envs=2)


@pytest.mark.parametrize("field,value,algorithm", [
    ("policy_delay", 3, "ddpg"), ("target_noise", 0.1, "sac"), ("target_noise_clip", 0.3, "ddpg"),
    ("action_l2", 0.0, "sac"), ("exploration_noise", 0.1, "sac"),
    ("init_alpha", 0.5, "td3"), ("alpha_lr", 3e-4, "ddpg"), ("target_entropy", -1.0, "td3"),
])
def test_config_names_both_fields_of_an_invalid_learner_combination(field, value, algorithm):
    with pytest.raises(ValueError, match=rf"invalid {field}={value!r} with algorithm='{algorithm}'; allowed: the default"):
        hjax.Config(algorithm=algorithm, **{field: value})


@pytest.mark.parametrize("algorithm", ["ddpg", "sac"])
def test_policy_delay_one_is_accepted_where_the_learner_does_that_anyway(algorithm):
    """DDPG and SAC update the actor after every critic step: naming policy_delay=1 says just
    that, so it is accepted and trains exactly as the default config does."""
    named = hjax.Config(algorithm=algorithm, policy_delay=1, **TINY)
    default = hjax.Config(algorithm=algorithm, **TINY)
    a = jax.jit(hjax.make_trainer(named).epoch)(hjax.make_trainer(named).init(jax.random.PRNGKey(0)))[1]
    b = jax.jit(hjax.make_trainer(default).epoch)(hjax.make_trainer(default).init(jax.random.PRNGKey(0)))[1]
    for name in b:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    with pytest.raises(ValueError, match=rf"policy_delay=4 with algorithm='{algorithm}'; allowed: the default 2 or 1"):
        hjax.Config(algorithm=algorithm, policy_delay=4)


@pytest.mark.parametrize("field,value,allowed", [
    ("algorithm", "ppo", "one of td3, ddpg, sac"), ("init_alpha", 0.0, "> 0"), ("alpha_lr", -1e-3, "> 0"),
    ("target_entropy", float("inf"), "finite"),
])
def test_config_rejects_invalid_learner_values(field, value, allowed):
    with pytest.raises(ValueError, match=rf"invalid {field}=.*allowed: .*{allowed}"):
        hjax.Config(**{"algorithm": "sac", field: value})


def _adam_count(opt_state):
    return int(next(s.count for s in opt_state if isinstance(s, optax.ScaleByAdamState)))


@pytest.mark.parametrize("algorithm", ["ddpg", "sac"])
def test_fused_epoch_updates_actor_every_critic_step(algorithm):
    """DDPG and SAC: one actor (and target, and temperature) step per critic step, whatever
    policy_delay says (its TD3 default 2; 5 steps is not a multiple of it)."""
    cfg = hjax.Config(algorithm=algorithm, **TINY)
    trainer = hjax.make_trainer(cfg)
    new, metrics = jax.jit(trainer.epoch)(trainer.init(jax.random.PRNGKey(0)))
    assert _adam_count(new.learner.critic_opt_state) == 5
    assert _adam_count(new.learner.actor_opt_state) == 5
    if algorithm == "sac":
        assert _adam_count(new.learner.alpha_opt_state) == 5
        assert set(SAC_METRIC_NAMES) <= set(metrics)
    else:
        assert not set(SAC_METRIC_NAMES) & set(metrics)


@pytest.mark.parametrize("algorithm", ["ddpg", "sac"])
def test_make_train_vmaps_each_learner(algorithm):
    """Seeds under vmap: finite, different seeds differ, and seed i equals seed i trained alone."""
    cfg = hjax.Config(algorithm=algorithm, **TINY)
    keys = jnp.stack([jax.random.PRNGKey(0), jax.random.PRNGKey(1)])
    train = jax.jit(jax.vmap(hjax.make_train(cfg)))
    state, metrics = train(keys)
    assert all(np.isfinite(np.asarray(v)).all() for k, v in metrics.items() if k not in ("env_steps", "grad_steps"))
    assert not np.allclose(metrics["loss/critic"][0], metrics["loss/critic"][1])
    alone_state, alone = jax.jit(hjax.make_train(cfg))(keys[1])
    np.testing.assert_allclose(metrics["loss/critic"][1], alone["loss/critic"], rtol=1e-4, atol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a[1], b, rtol=1e-4, atol=1e-5),
                 state.learner.actor_params, alone_state.learner.actor_params)


def test_sac_evaluates_the_mean_action_and_explores_by_sampling():
    cfg = hjax.Config(algorithm="sac", **TINY)
    trainer = hjax.make_trainer(cfg)
    state = trainer.init(jax.random.PRNGKey(0))
    env = cfg.make_env()
    obs = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(1), 64)).obs
    x = jnp.concatenate([obs["observation"], obs["desired_goal"]], axis=-1)  # normalisers are identity at init
    mean = trainer.learner.policy(state.learner.actor_params, x)
    np.testing.assert_allclose(trainer.policy(state, obs), mean, rtol=1e-6)
    np.testing.assert_allclose(mean, np.tanh(np_gaussian_actor(state.learner.actor_params, np.asarray(x))[0]),
                               rtol=1e-4, atol=1e-6)
    a = trainer.learner.explore(state.learner.actor_params, x, jax.random.PRNGKey(2))
    b = trainer.learner.explore(state.learner.actor_params, x, jax.random.PRNGKey(3))
    assert np.abs(np.asarray(a)).max() <= 1 and not np.allclose(a, b) and not np.allclose(a, mean)


# ---- learning --------------------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ["ddpg", "sac"])
def test_point_mass_learns_with_each_learner(algorithm):
    """The td3 learning check of tests/test_train.py, with the other learners: eval success rises
    from ~0 to high within the same tiny budget (about 40 s each on a shared 2-core CPU)."""
    cfg = hjax.Config(algorithm=algorithm, num_envs=16, num_epochs=20, grad_steps_per_epoch=200,
                      hidden_sizes=(64, 64), batch_size=256, buffer_episodes=1000, num_eval_envs=64, seed=0)
    her = hjax.train(cfg, progress_bar=False, verbose=False).metrics["eval/success_rate"]
    assert her[:2].max() < 0.2, her
    assert her[-3:].mean() > 0.8, her


def test_sac_run_dir_params_and_saved_policy(tmp_path):
    """A SAC run: Result.params names SAC's networks, metrics.csv has its columns, and the
    checkpointed policy is the run's deterministic (mean) policy."""
    result = hjax.train(hjax.Config(algorithm="sac", **TINY), run_dir=tmp_path, progress_bar=False, verbose=False)
    assert set(result.params) == {"actor", "critic", "target_critic"}
    header = (tmp_path / "metrics.csv").read_text().splitlines()[0].split(",")
    assert set(SAC_METRIC_NAMES) <= set(header)
    env = result.config.make_env()
    obs = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), 3)).obs
    np.testing.assert_allclose(hjax.load_policy(tmp_path)(obs), result.policy()(obs), rtol=1e-6)


# ---- critic LayerNorm (Config.critic_layer_norm) ---------------------------------------------


@pytest.mark.parametrize("algorithm", ["td3", "ddpg", "sac"])
def test_critic_layer_norm_normalises_each_hidden_layer_of_the_critics_only(algorithm):
    """With critic_layer_norm each critic's hidden layers are Dense -> LayerNorm -> ReLU (NumPy
    forward pass), the actor is the plain MLP; off, the critics have no LayerNorm at all."""
    from hjax.td3 import make_td3

    make = {"td3": lambda **kw: make_td3(**{**dict(hidden_sizes=(16, 16), action_size=ACT, gamma=GAMMA, tau=0.05,
                                                   actor_lr=1e-3, critic_lr=1e-3, policy_delay=2,
                                                   target_noise=0.2, target_noise_clip=0.5, action_l2=1.0,
                                                   exploration_noise=0.2, target_bounds=(LOW, HIGH)), **kw}),
            "ddpg": _ddpg, "sac": _sac}[algorithm]
    on = make(critic_layer_norm=True).init(jax.random.PRNGKey(0), IN, ACT)
    off = make().init(jax.random.PRNGKey(0), IN, ACT)
    heads = ("q",) if algorithm == "ddpg" else ("q1", "q2")
    for head in heads:
        assert sorted(k for k in on.critic_params["params"][head] if k.startswith("LayerNorm")) == \
            ["LayerNorm_0", "LayerNorm_1"]
        assert not [k for k in off.critic_params["params"][head] if k.startswith("LayerNorm")]
    assert "LayerNorm" not in str(jax.tree_util.tree_structure(on.actor_params))
    jax.tree.map(np.testing.assert_array_equal, on.actor_params, off.actor_params)  # the actor is untouched

    # Scaled and shifted LayerNorm parameters, so the test sees them used.
    rng = np.random.default_rng(0)
    params = jax.tree_util.tree_map_with_path(
        lambda path, x: x + rng.normal(0, 0.5, x.shape).astype(x.dtype)
        if "LayerNorm" in jax.tree_util.keystr(path) else x, on.critic_params)
    batch = random_batch(jax.random.PRNGKey(1), B, IN, ACT)
    x, a = np.asarray(batch.inputs, np.float64), np.asarray(batch.action, np.float64)
    if algorithm == "ddpg":
        from hjax.networks import Critic
        got = (Critic((16, 16), True).apply(params, batch.inputs, batch.action),)
        want = (np_critic(params, x, a),)
    else:
        from hjax.networks import TwinCritic
        got = TwinCritic((16, 16), True).apply(params, batch.inputs, batch.action)
        want = np_twin_critic(params, x, a)
    for g, w in zip(got, want, strict=True):
        _close(g, w, rtol=1e-4, atol=1e-4)


def test_critic_layer_norm_trains_and_is_validated(tmp_path, capsys):
    config = hjax.Config(critic_layer_norm=True, **{**TINY, "grad_steps_per_epoch": 4})
    trainer = hjax.make_trainer(config)
    state, metrics = jax.jit(trainer.epoch)(trainer.init(jax.random.PRNGKey(0)))
    losses = [np.asarray(metrics[k]) for k in ("loss/critic", "loss/actor", "q/mean")]
    assert all(np.isfinite(v).all() for v in losses)
    assert "LayerNorm_0" in state.learner.critic_params["params"]["q1"]
    with pytest.raises(ValueError, match=r"invalid critic_layer_norm='yes'; allowed: True or False"):
        hjax.Config(critic_layer_norm="yes")
    from hjax import cli

    args = cli.build_parser().parse_args(["train", "--critic-layer-norm"])
    assert cli.config_from_args(args).critic_layer_norm is True


# ---- n-step rows (Config.n_step): each row's own bootstrap discount ---------------------------


@pytest.mark.parametrize("algorithm", ["td3", "ddpg", "sac"])
def test_each_learner_bootstraps_n_step_rows_with_their_own_discount(algorithm):
    """A batch carrying per-row discounts gamma^m: every learner's critic target is
    clip(r + gamma^m * next value, low, high) row by row (NumPy), not r + gamma * next value."""
    from hjax.td3 import make_td3

    rng = np.random.default_rng(4)
    batch = random_batch(jax.random.PRNGKey(2), B, IN, ACT)
    m = rng.integers(1, 4, B)
    batch = batch.replace(reward=jnp.asarray(-rng.integers(0, 4, B) * 0.9, jnp.float32),  # n-step sums
                          discount=jnp.asarray(GAMMA ** m, jnp.float32))
    x, x2, a, r, d = (np.asarray(v, np.float64) for v in (batch.inputs, batch.next_inputs, batch.action,
                                                          batch.reward, batch.discount))
    noise = jax.random.normal(jax.random.PRNGKey(3), (B, ACT))
    if algorithm == "ddpg":
        ddpg = _ddpg(gamma=0.5)  # the config's gamma must not be used for these rows
        s, o = ddpg.init(jax.random.PRNGKey(0), IN, ACT), ddpg.init(jax.random.PRNGKey(1), IN, ACT)
        loss, _ = ddpg.critic_loss(s.critic_params, o.actor_params, o.critic_params, batch)
        y = np.clip(r + d * np_critic(o.critic_params, x2, np_actor(o.actor_params, x2)), LOW, HIGH)
        want = np.mean((np_critic(s.critic_params, x, a) - y) ** 2)
    elif algorithm == "td3":
        td3 = make_td3(hidden_sizes=(16, 16), action_size=ACT, gamma=0.5, tau=0.05, actor_lr=1e-3, critic_lr=1e-3,
                       policy_delay=2, target_noise=0.2, target_noise_clip=0.5, action_l2=1.0,
                       exploration_noise=0.2, target_bounds=(LOW, HIGH))
        s, o = td3.init(jax.random.PRNGKey(0), IN, ACT), td3.init(jax.random.PRNGKey(1), IN, ACT)
        loss, _ = td3.critic_loss(s.critic_params, o.actor_params, o.critic_params, batch, noise)
        a2 = np.clip(np_actor(o.actor_params, x2) + np.clip(0.2 * np.asarray(noise), -0.5, 0.5), -1, 1)
        y = np.clip(r + d * np.minimum(*np_twin_critic(o.critic_params, x2, a2)), LOW, HIGH)
        c1, c2 = np_twin_critic(s.critic_params, x, a)
        want = np.mean((c1 - y) ** 2) + np.mean((c2 - y) ** 2)
    else:
        sac = _sac(gamma=0.5)
        s, o = sac.init(jax.random.PRNGKey(0), IN, ACT), sac.init(jax.random.PRNGKey(1), IN, ACT)
        loss, _ = sac.critic_loss(s.critic_params, o.actor_params, o.critic_params, jnp.log(0.3), batch, noise)
        a2, logp2 = _np_sample(o.actor_params, x2, np.asarray(noise, np.float64))
        y = np.clip(r + d * (np.minimum(*np_twin_critic(o.critic_params, x2, a2)) - 0.3 * logp2), LOW, HIGH)
        c1, c2 = np_twin_critic(s.critic_params, x, a)
        want = np.mean((c1 - y) ** 2) + np.mean((c2 - y) ** 2)
    _close(loss, want)


def test_n_step_trains_is_validated_and_not_sweepable():
    """n_step reaches the fused step: from the same key, the first epoch plays the same episodes
    and samples the same rows (composition) as n_step=1, but the critic fits other targets."""
    config = hjax.Config(n_step=3, **{**TINY, "grad_steps_per_epoch": 4})
    metrics = {}
    for n in (1, 3):
        trainer = hjax.make_trainer(config.replace(n_step=n))
        _, metrics[n] = jax.jit(trainer.epoch)(trainer.init(jax.random.PRNGKey(0)))
    assert all(np.isfinite(np.asarray(metrics[3][k])).all() for k in ("loss/critic", "loss/actor", "q/mean"))
    for k in ("train/success_rate", "train/final_distance", "replay/relabeled_fraction",
              "replay/positive_reward_fraction"):
        np.testing.assert_array_equal(metrics[3][k], metrics[1][k], err_msg=k)
    assert float(metrics[3]["loss/critic"]) != float(metrics[1]["loss/critic"])
    T = config.make_env().episode_length
    for bad in (0, T + 1, 2.0, True, "3"):
        with pytest.raises(ValueError, match=rf"invalid n_step={bad!r}; allowed: an integer in \[1, episode_length={T}\]"):
            hjax.Config(n_step=bad)
    with pytest.raises(ValueError, match="invalid grid field n_step=.*cannot be swept"):
        hjax.sweep(config, {"n_step": [1, 3]})
    from hjax import cli

    assert cli.config_from_args(cli.build_parser().parse_args(["train", "--n-step", "3"])).n_step == 3
