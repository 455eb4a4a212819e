"""TD3 (Fujimoto et al. 2018) with the HER paper's target clipping and action penalty.

Pure functions over a frozen `TD3State`; `make_td3` closes over the static hyperparameters and
returns a `hjax.learner.Learner`. Time-limit truncation is never a terminal in a goal env, so
every target bootstraps (no done mask).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from hjax.learner import (ActorCriticState, Batch, Learner, bootstrap_discount, clipped_target, critic_metrics,
                          deterministic_learner, gradient_step, polyak)
from hjax.networks import Actor, TwinCritic

TD3State = ActorCriticState
"""Online actor and twin critic, their targets, and both optimiser states."""

__all__ = ["TD3State", "Batch", "make_td3", "polyak", "smoothed_target_action", "td3_target"]


def td3_target(reward: jax.Array, q1_next: jax.Array, q2_next: jax.Array, gamma: float,
               low: float, high: float) -> jax.Array:
    """Clipped double-Q target (TD3 Eq. 10) clipped to the return bound (HER: clip_return):
    `y = clip(r + gamma * min(Q1'(s', a~), Q2'(s', a~)), low, high)`."""
    return clipped_target(reward, jnp.minimum(q1_next, q2_next), gamma, low, high)


def smoothed_target_action(action: jax.Array, noise: jax.Array, noise_std: float,
                           noise_clip: float) -> jax.Array:
    """Target-policy smoothing (TD3 Eq. 14): `a~ = clip(a + clip(std * eps, -c, c), -1, 1)`."""
    return jnp.clip(action + jnp.clip(noise_std * noise, -noise_clip, noise_clip), -1.0, 1.0)


def make_td3(*, hidden_sizes, action_size: int, gamma: float, tau: float, actor_lr: float,
             critic_lr: float, policy_delay: int, target_noise: float, target_noise_clip: float,
             action_l2: float, exploration_noise: float, target_bounds: tuple[float, float],
             polyak_keep: float | None = None, critic_layer_norm: bool = False) -> Learner:
    """Build the TD3 functions for fixed hyperparameters. The scalars may be traced arrays (one grid
    point of `hjax.sweep`); `polyak_keep` is then the host-computed `1 - tau`."""
    actor = Actor(tuple(hidden_sizes), action_size)
    critic = TwinCritic(tuple(hidden_sizes), critic_layer_norm)
    actor_opt = optax.adam(actor_lr)
    critic_opt = optax.adam(critic_lr)
    low, high = target_bounds

    def critic_loss(critic_params, target_actor_params, target_critic_params, batch: Batch,
                    noise: jax.Array):
        next_action = smoothed_target_action(actor.apply(target_actor_params, batch.next_inputs),
                                             noise, target_noise, target_noise_clip)
        q1_next, q2_next = critic.apply(target_critic_params, batch.next_inputs, next_action)
        target = jax.lax.stop_gradient(td3_target(batch.reward, q1_next, q2_next, bootstrap_discount(batch, gamma), low, high))
        q1, q2 = critic.apply(critic_params, batch.inputs, batch.action)
        loss = jnp.mean(jnp.square(q1 - target)) + jnp.mean(jnp.square(q2 - target))
        return loss, q1

    def actor_loss(actor_params, critic_params, batch: Batch):
        action = actor.apply(actor_params, batch.inputs)
        q1, _ = critic.apply(critic_params, batch.inputs, action)
        loss = -jnp.mean(q1) + action_l2 * jnp.mean(jnp.square(action))
        return loss, action

    def critic_step(state: TD3State, batch: Batch, key: jax.Array) -> tuple[TD3State, dict]:
        noise = jax.random.normal(key, batch.action.shape, batch.action.dtype)
        critic_params, opt_state, loss, q1, grads = gradient_step(
            critic_loss, critic_opt, state.critic_params, state.critic_opt_state,
            state.target_actor_params, state.target_critic_params, batch, noise)
        return state.replace(critic_params=critic_params, critic_opt_state=opt_state), critic_metrics(loss, grads, q1)

    # The delayed policy update, then Polyak updates of both targets (TD3 Alg. 1).
    return deterministic_learner(actor=actor, critic=critic, actor_opt=actor_opt, critic_opt=critic_opt, tau=tau,
                                 exploration_noise=exploration_noise, policy_delay=policy_delay,
                                 critic_step=critic_step, critic_loss=critic_loss, actor_loss=actor_loss,
                                 polyak_keep=polyak_keep)
