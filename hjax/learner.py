"""What the three learners (TD3, DDPG, SAC) share: the batch, the interface the fused step
calls, the clipped Bellman target, Polyak averaging, one optimiser step and the step metrics.

Each learner (`hjax.td3`, `hjax.ddpg`, `hjax.sac`) is a `make_*` factory closing over its
static hyperparameters and returning a `Learner` of pure functions over its own frozen state.
Every learner state has `actor_params` and `critic_params`.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct


@struct.dataclass
class Batch:
    """A normalised learner batch: policy inputs are `concat(norm(o), norm(g))`."""

    inputs: jax.Array  # (B, obs_dim + goal_dim)
    next_inputs: jax.Array  # (B, obs_dim + goal_dim)
    action: jax.Array  # (B, action_dim)
    reward: jax.Array  # (B,)
    discount: jax.Array | None = None  # (B,) n-step targets only (`Config.n_step`): gamma^m per row


def bootstrap_discount(batch: Batch, gamma):
    """What multiplies the next state's value in `batch`'s targets: gamma, or each row's gamma^m
    for n-step rows (`hjax.her`)."""
    return gamma if batch.discount is None else batch.discount


@struct.dataclass
class ActorCriticState:
    """What a deterministic actor-critic (TD3, DDPG) carries: online and target networks."""

    actor_params: dict
    critic_params: dict
    target_actor_params: dict
    target_critic_params: dict
    actor_opt_state: optax.OptState
    critic_opt_state: optax.OptState


class Learner(NamedTuple):
    """The pure functions of one learner, as the fused step calls them.

    Each group of `policy_delay` critic steps (each on its own HER batch) is followed by one
    actor step on the last group's batch; the actor step also moves the targets.
    """

    init: Callable[[jax.Array, int, int], Any]
    """`init(key, input_size, action_size) -> state`."""
    critic_step: Callable[[Any, Batch, jax.Array], tuple[Any, dict]]
    """`critic_step(state, batch, key) -> (state, metrics)`."""
    actor_step: Callable[[Any, Batch, jax.Array], tuple[Any, dict]]
    """`actor_step(state, batch, key) -> (state, metrics)`: policy (and temperature) update,
    then Polyak updates of the targets."""
    policy: Callable[[dict, jax.Array], jax.Array]
    """`policy(actor_params, inputs) -> action`: the deterministic action used in evaluation."""
    explore: Callable[[dict, jax.Array, jax.Array], jax.Array]
    """`explore(actor_params, inputs, key) -> action`: the training action (before the
    epsilon-random actions the trainer mixes in)."""
    critic_loss: Callable
    actor_loss: Callable
    policy_delay: int
    """Critic steps per actor step (TD3: 2; DDPG and SAC: 1)."""


def clipped_target(reward: jax.Array, q_next: jax.Array, gamma: float, low: float, high: float) -> jax.Array:
    """The bootstrapped target `y = clip(r + gamma * Q_next, low, high)` clipped to the return
    bound (HER paper / baselines clip_return). No done mask: a goal env only truncates."""
    return jnp.clip(reward + gamma * q_next, low, high)


def polyak(target, online, tau: float, keep: float | None = None):
    """`target <- (1 - tau) * target + tau * online` (TD3 Alg. 1, last line; DDPG Alg. 1).

    `keep` is `1 - tau` when given (a sweep traces both, each computed on the host)."""
    keep = 1.0 - tau if keep is None else keep
    return jax.tree.map(lambda t, o: keep * t + tau * o, target, online)


def gaussian_exploration(action: jax.Array, key: jax.Array, std: float) -> jax.Array:
    """A deterministic policy's training action: `clip(a + std * eps, -1, 1)` (baselines HER noise_eps)."""
    return jnp.clip(action + std * jax.random.normal(key, action.shape), -1.0, 1.0)


def gradient_step(loss_fn: Callable, optimizer: optax.GradientTransformation, params, opt_state, *args):
    """One optimiser step on `loss_fn(params, *args) -> (loss, aux)`.

    Returns `(params, opt_state, loss, aux, grads)`."""
    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, *args)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss, aux, grads


def critic_metrics(loss: jax.Array, grads, q: jax.Array) -> dict:
    """The metrics of one critic step (q: the first critic's values on the batch)."""
    return {"loss/critic": loss, "grad_norm/critic": optax.tree.norm(grads),
            "q/mean": q.mean(), "q/min": q.min(), "q/max": q.max()}


def actor_metrics(loss: jax.Array, grads, action: jax.Array) -> dict:
    """The metrics of one actor step (action: the policy's actions on the batch)."""
    abs_action = jnp.abs(action)
    return {"loss/actor": loss, "grad_norm/actor": optax.tree.norm(grads),
            "action/abs_mean": abs_action.mean(),
            "action/saturation": (abs_action > 0.99).mean(dtype=jnp.float32)}


def deterministic_learner(*, actor, critic, actor_opt: optax.GradientTransformation,
                          critic_opt: optax.GradientTransformation, tau: float, exploration_noise: float,
                          policy_delay: int, critic_step: Callable, critic_loss: Callable,
                          actor_loss: Callable, polyak_keep: float | None = None) -> Learner:
    """What TD3 and DDPG share around their own losses and critic step: online networks with
    targets that start equal (`ActorCriticState`), the deterministic policy with Gaussian
    exploration noise, and the actor step: one step on `actor_loss(actor_params, critic_params,
    batch)`, then Polyak updates of both targets (TD3 Alg. 1; DDPG Alg. 1). Scalars may be traced
    (`hjax.sweep`); `polyak_keep` is then the host-computed `1 - tau`."""

    def init(key: jax.Array, input_size: int, action_size: int) -> ActorCriticState:
        key_actor, key_critic = jax.random.split(key)
        x = jnp.zeros((1, input_size), jnp.float32)
        a = jnp.zeros((1, action_size), jnp.float32)
        actor_params = actor.init(key_actor, x)
        critic_params = critic.init(key_critic, x, a)
        return ActorCriticState(actor_params=actor_params, critic_params=critic_params,
                                target_actor_params=actor_params, target_critic_params=critic_params,
                                actor_opt_state=actor_opt.init(actor_params),
                                critic_opt_state=critic_opt.init(critic_params))

    def actor_step(state: ActorCriticState, batch: Batch, key: jax.Array) -> tuple[ActorCriticState, dict]:
        del key  # deterministic: no sampling in the actor loss
        actor_params, opt_state, loss, action, grads = gradient_step(
            actor_loss, actor_opt, state.actor_params, state.actor_opt_state, state.critic_params, batch)
        state = state.replace(
            actor_params=actor_params, actor_opt_state=opt_state,
            target_actor_params=polyak(state.target_actor_params, actor_params, tau, polyak_keep),
            target_critic_params=polyak(state.target_critic_params, state.critic_params, tau, polyak_keep))
        return state, actor_metrics(loss, grads, action)

    def policy(actor_params, inputs: jax.Array) -> jax.Array:
        return actor.apply(actor_params, inputs)

    def explore(actor_params, inputs: jax.Array, key: jax.Array) -> jax.Array:
        return gaussian_exploration(policy(actor_params, inputs), key, exploration_noise)

    return Learner(init=init, critic_step=critic_step, actor_step=actor_step, policy=policy, explore=explore,
                   critic_loss=critic_loss, actor_loss=actor_loss, policy_delay=policy_delay)
