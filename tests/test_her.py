"""The episode buffer and the HER relabeling kernel against plain Python-loop references."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hjax import envs
from hjax import buffer as buffer_lib
from hjax import her

T, OBS, GOAL, ACT = 7, 3, 2, 2
STRATEGIES = ("future", "final", "episode", "random", "none")
ENV = envs.make("point_mass", episode_length=T, distance_threshold=0.3)


def _random_episodes(key, n):
    k = jax.random.split(key, 4)
    return buffer_lib.Episodes(
        observation=jax.random.normal(k[0], (n, T + 1, OBS)),
        achieved_goal=jax.random.uniform(k[1], (n, T + 1, GOAL), minval=-0.5, maxval=0.5),
        desired_goal=jax.random.uniform(k[2], (n, T, GOAL), minval=-0.5, maxval=0.5),
        action=jax.random.uniform(k[3], (n, T, ACT), minval=-1, maxval=1))


def _filled_buffer(capacity=12, n=9, key=0):
    state = buffer_lib.init(capacity, T, OBS, GOAL, ACT)
    return buffer_lib.add(state, _random_episodes(jax.random.PRNGKey(key), n))


# ---- buffer ----------------------------------------------------------------------------------

def test_buffer_ring_insert_and_wrap():
    state = buffer_lib.init(5, T, OBS, GOAL, ACT)
    a = _random_episodes(jax.random.PRNGKey(1), 3)
    b = _random_episodes(jax.random.PRNGKey(2), 3)
    state = buffer_lib.add(state, a)
    assert int(state.size) == 3 and int(state.insert_pos) == 3
    state = buffer_lib.add(state, b)
    assert int(state.size) == 5 and int(state.insert_pos) == 1
    # Slots 3, 4 then 0 (wrapped) hold b; slots 1, 2 still hold a's last two episodes.
    expected = [b.action[2], a.action[1], a.action[2], b.action[0], b.action[1]]
    np.testing.assert_array_equal(state.data.action, np.stack(expected))
    np.testing.assert_array_equal(state.data.observation[0], b.observation[2])


def test_buffer_rejects_oversized_insert():
    state = buffer_lib.init(2, T, OBS, GOAL, ACT)
    with pytest.raises(ValueError, match="cannot add 3 episodes to a buffer of capacity 2"):
        buffer_lib.add(state, _random_episodes(jax.random.PRNGKey(0), 3))


# ---- HER goal index arithmetic ----------------------------------------------------------------

def _reference_goal_t(strategy, t, u):
    """Plain-loop reference of the strategies (module docstring of hjax.her)."""
    out = []
    for ti, ui in zip(t.tolist(), u.tolist()):
        if strategy == "future":
            choices = list(range(ti + 1, T + 1))  # achieved after action t or later
        elif strategy == "final":
            choices = [T]
        elif strategy in ("episode", "random"):
            choices = list(range(0, T + 1))
        else:
            choices = [ti + 1]
        out.append(choices[min(int(ui * len(choices)), len(choices) - 1)])
    return np.array(out)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_goal_time_matches_loop_reference(strategy):
    key_t, key_u = jax.random.split(jax.random.PRNGKey(3))
    t = jax.random.randint(key_t, (2000,), 0, T)
    u = jax.random.uniform(key_u, (2000,))
    u = u.at[:3].set(jnp.array([0.0, 0.999999, np.nextafter(np.float32(1), np.float32(0))]))
    got = her.goal_time(strategy, t, u, T)
    np.testing.assert_array_equal(got, _reference_goal_t(strategy, np.asarray(t), np.asarray(u)))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_traced_strategy_index_draws_what_the_named_strategy_draws(strategy):
    """A sweep passes the strategy as a traced index and 1 - 1/(1+k) computed on the host: the same
    rows, relabel flags and goals as the named strategy, bit for bit, with the index under vmap."""
    buf = _filled_buffer(capacity=12, n=9)
    k = 3.0
    named = her.sample_indices(jax.random.PRNGKey(8), buf.size, T, 256, strategy, k)
    p = np.float32(0.0 if strategy == "none" else 1.0 - 1.0 / (1.0 + k))
    traced = jax.jit(jax.vmap(lambda i: her.sample_indices(jax.random.PRNGKey(8), buf.size, T, 256, i, None, p)))(
        jnp.array([STRATEGIES.index(strategy)] * 2, jnp.int32))
    for field in ("episode", "t", "relabel", "goal_episode", "goal_t"):
        np.testing.assert_array_equal(getattr(traced, field)[1], getattr(named, field), err_msg=field)
    assert bool(np.any(np.asarray(named.relabel))) == (strategy != "none")


# ---- relabel: gather + reward, against a loop -------------------------------------------------

def _reference_relabel(data, idx):
    obs, ag, dg, act = (np.asarray(x) for x in (data.observation, data.achieved_goal, data.desired_goal, data.action))
    rows = []
    for i in range(len(idx.episode)):
        e, t = int(idx.episode[i]), int(idx.t[i])
        goal = ag[int(idx.goal_episode[i]), int(idx.goal_t[i])] if bool(idx.relabel[i]) else dg[e, t]
        dist = np.linalg.norm(ag[e, t + 1] - goal)
        reward = 0.0 if dist < ENV.distance_threshold else -1.0
        original_success = np.linalg.norm(ag[e, t + 1] - dg[e, t]) < ENV.distance_threshold
        met_before = np.linalg.norm(ag[e, t] - goal) < ENV.distance_threshold
        informative = bool(idx.relabel[i]) and reward == 0.0 and not met_before
        rows.append((obs[e, t], obs[e, t + 1], goal, act[e, t], reward, reward == 0.0, original_success, informative))
    return [np.array(c) for c in zip(*rows)]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_relabel_matches_loop_reference(strategy):
    buf = _filled_buffer()
    idx = her.sample_indices(jax.random.PRNGKey(4), buf.size, T, 512, strategy, 4.0)
    batch, comp = jax.jit(her.relabel, static_argnums=(2, 3))(buf, idx, ENV.compute_reward, ENV.is_success)
    o, o2, g, a, r, pos, pos_orig, informative = _reference_relabel(buf.data, idx)
    np.testing.assert_array_equal(batch.observation, o)
    np.testing.assert_array_equal(batch.next_observation, o2)
    np.testing.assert_array_equal(batch.goal, g)
    np.testing.assert_array_equal(batch.action, a)
    np.testing.assert_array_equal(batch.reward, r)
    np.testing.assert_allclose(comp.relabeled_fraction, np.mean(idx.relabel), rtol=1e-6)
    np.testing.assert_allclose(comp.positive_reward_fraction, pos.mean(), rtol=1e-6)
    np.testing.assert_allclose(comp.positive_reward_fraction_original, pos_orig.mean(), rtol=1e-6)
    np.testing.assert_allclose(comp.informative_positive_fraction, informative.mean(), rtol=1e-6)
    if strategy != "none":
        assert 0 < float(comp.informative_positive_fraction) <= float(comp.positive_reward_fraction)
    # The relabeled goals do carry more success rewards than the originals (except for 'none').
    if strategy in ("future", "final"):
        assert float(comp.positive_reward_fraction) > float(comp.positive_reward_fraction_original)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_index_invariants(strategy):
    buf = _filled_buffer(capacity=12, n=9)  # 9 stored of 12 slots: never sample the empty ones
    B = 20_000
    idx = her.sample_indices(jax.random.PRNGKey(5), buf.size, T, B, strategy, 4.0)
    ep, t, goal_ep, goal_t = (np.asarray(x) for x in (idx.episode, idx.t, idx.goal_episode, idx.goal_t))
    relabel = np.asarray(idx.relabel)
    assert ep.min() >= 0 and ep.max() < 9 and t.min() >= 0 and t.max() < T
    assert goal_t.min() >= 0 and goal_t.max() <= T
    p = 0.0 if strategy == "none" else 0.8
    tolerance = 5 * np.sqrt(max(p * (1 - p), 1e-12) / B)
    assert abs(relabel.mean() - p) <= tolerance, (relabel.mean(), p)
    if strategy == "future":
        assert np.all(goal_t > t) and np.all(goal_ep == ep)
        assert set(np.unique(goal_t - t)) == set(range(1, T + 1))  # every offset is reachable
    if strategy == "final":
        assert np.all(goal_t == T) and np.all(goal_ep == ep)
    if strategy == "episode":
        assert np.all(goal_ep == ep) and set(np.unique(goal_t)) == set(range(T + 1))
    if strategy == "random":
        assert goal_ep.max() < 9 and np.mean(goal_ep != ep) > 0.8
    if strategy == "none":
        batch, comp = her.relabel(buf, idx, ENV.compute_reward, ENV.is_success)
        np.testing.assert_array_equal(batch.goal, np.asarray(buf.data.desired_goal)[ep, t])
        assert float(comp.relabeled_fraction) == 0.0
        assert float(comp.positive_reward_fraction) == float(comp.positive_reward_fraction_original)


def test_relabel_fraction_follows_replay_k():
    buf = _filled_buffer()
    for k, p in ((0.0, 0.0), (1.0, 0.5), (4.0, 0.8), (8.0, 8 / 9)):
        idx = her.sample_indices(jax.random.PRNGKey(6), buf.size, T, 20_000, "future", k)
        assert abs(float(np.mean(idx.relabel)) - p) <= 5 * np.sqrt(max(p * (1 - p), 1e-12) / 20_000)


def test_same_key_same_batch_and_traced_once():
    buf = _filled_buffer()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def sample(key, buf):
        return her.sample(key, buf, 64, "future", 4.0, ENV.compute_reward, ENV.is_success)

    a, _ = sample(jax.random.PRNGKey(7), buf)
    b, _ = sample(jax.random.PRNGKey(7), buf)
    c, _ = sample(jax.random.PRNGKey(8), buf)
    chex.assert_trees_all_equal(a, b)
    assert not np.array_equal(a.goal, c.goal)
    chex.clear_trace_counter()


def test_invalid_strategy():
    with pytest.raises(ValueError, match="her_strategy='later'"):
        her.sample_indices(jax.random.PRNGKey(0), jnp.int32(3), T, 8, "later", 4.0)


def test_an_unmoved_achieved_goal_gives_positives_but_no_informative_ones():
    """An object nobody touches: every achieved goal is its resting place, so relabeled goals are
    met at t and t+1 alike. They are success rewards, but none is informative."""
    buf = _filled_buffer()
    data = buf.data
    still = jnp.broadcast_to(data.achieved_goal[:, :1], data.achieved_goal.shape)  # ag_t = ag_0 for all t
    buf = buf.replace(data=data.replace(achieved_goal=still))
    idx = her.sample_indices(jax.random.PRNGKey(6), buf.size, T, 4096, "future", 4.0)
    _, comp = her.relabel(buf, idx, ENV.compute_reward, ENV.is_success)
    assert float(comp.positive_reward_fraction) > 0.75  # the relabeled rows: all successes
    assert float(comp.informative_positive_fraction) == 0.0


# ---- n-step rows (Config.n_step), against a loop ----------------------------------------------

def _reference_n_step(data, idx, n, gamma):
    """Per row: the goal as `_reference_relabel` picks it, then m = min(n, T - t) rewards summed
    with gamma^i, the observation m steps on, and gamma^m; one row at a time, in float64."""
    obs, ag, dg = (np.asarray(x, np.float64) for x in (data.observation, data.achieved_goal, data.desired_goal))
    rewards, nexts, discounts = [], [], []
    for i in range(len(idx.episode)):
        e, t = int(idx.episode[i]), int(idx.t[i])
        goal = ag[int(idx.goal_episode[i]), int(idx.goal_t[i])] if bool(idx.relabel[i]) else dg[e, t]
        total, k = 0.0, 0
        while k < n and t + k + 1 <= T:
            total += gamma ** k * (0.0 if np.linalg.norm(ag[e, t + k + 1] - goal) < ENV.distance_threshold else -1.0)
            k += 1
        rewards.append(total)
        nexts.append(obs[e, t + k])
        discounts.append(gamma ** k)
    return np.array(rewards), np.array(nexts), np.array(discounts)


@pytest.mark.parametrize("n", [2, 3, T])
@pytest.mark.parametrize("strategy", ["future", "none"])
def test_n_step_rows_match_loop_reference(n, strategy):
    buf = _filled_buffer()
    idx = her.sample_indices(jax.random.PRNGKey(5), buf.size, T, 512, strategy, 4.0)
    gamma = 0.9
    one, one_comp = her.relabel(buf, idx, ENV.compute_reward, ENV.is_success)
    batch, comp = jax.jit(her.relabel, static_argnums=(2, 3, 4))(buf, idx, ENV.compute_reward, ENV.is_success, n,
                                                                  gamma)
    r, o2, disc = _reference_n_step(buf.data, idx, n, gamma)
    np.testing.assert_allclose(batch.reward, r, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(batch.next_observation, o2.astype(np.float32))
    np.testing.assert_allclose(batch.discount, disc, rtol=1e-6)
    for field in ("observation", "goal", "action"):  # the row itself is the one-step row's
        np.testing.assert_array_equal(getattr(batch, field), getattr(one, field))
    jax.tree.map(np.testing.assert_array_equal, comp, one_comp)  # composition: the first step's reward
    assert one.discount is None
    t = np.asarray(idx.t)
    assert np.any(t + n > T) and np.any(t + n <= T)  # rows cut at the episode's end and whole rows both
    assert len(np.unique(np.round(r, 5))) > 2  # sums of several rewards, not one step's {0, -1}


def test_n_step_without_a_discount_is_refused():
    buf = _filled_buffer()
    idx = her.sample_indices(jax.random.PRNGKey(5), buf.size, T, 8, "future", 4.0)
    with pytest.raises(ValueError, match="n_step=3 needs the discount"):
        her.relabel(buf, idx, ENV.compute_reward, ENV.is_success, 3)
