"""TD3 (Fujimoto et al. 2018) with the HER paper's target clipping and action penalty.

Pure functions over a frozen `TD3State`; `make_td3` closes over the static hyperparameters.
Time-limit truncation is never a terminal in a goal env, so every target bootstraps (no done mask).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from hjax.learner import ActorCriticState, Batch, clipped_target, init_actor_critic, polyak
from hjax.networks import Actor, TwinCritic

TD3State = ActorCriticState
"""Online actor and twin critic, their targets, and both optimiser states."""

__all__ = ["TD3", "TD3State", "Batch", "make_td3", "polyak", "smoothed_target_action", "td3_target"]


def td3_target(reward: jax.Array, q1_next: jax.Array, q2_next: jax.Array, gamma: float,
               low: float, high: float) -> jax.Array:
    """Clipped double-Q target (TD3 Eq. 10) clipped to the return bound (HER: clip_return):
    `y = clip(r + gamma * min(Q1'(s', a~), Q2'(s', a~)), low, high)`."""
    return clipped_target(reward, jnp.minimum(q1_next, q2_next), gamma, low, high)


def smoothed_target_action(action: jax.Array, noise: jax.Array, noise_std: float,
                           noise_clip: float) -> jax.Array:
    """Target-policy smoothing (TD3 Eq. 14): `a~ = clip(a + clip(std * eps, -c, c), -1, 1)`."""
    return jnp.clip(action + jnp.clip(noise_std * noise, -noise_clip, noise_clip), -1.0, 1.0)


class TD3(NamedTuple):
    """The pure functions of one TD3 learner."""

    init: Callable[[jax.Array, int, int], TD3State]
    critic_step: Callable[[TD3State, Batch, jax.Array], tuple[TD3State, dict]]
    actor_step: Callable[[TD3State, Batch], tuple[TD3State, dict]]
    policy: Callable[[dict, jax.Array], jax.Array]
    critic_loss: Callable
    actor_loss: Callable


def make_td3(*, hidden_sizes, action_size: int, gamma: float, tau: float, actor_lr: float,
             critic_lr: float, target_noise: float, target_noise_clip: float, action_l2: float,
             target_bounds: tuple[float, float]) -> TD3:
    """Build the TD3 functions for fixed hyperparameters."""
    actor = Actor(tuple(hidden_sizes), action_size)
    critic = TwinCritic(tuple(hidden_sizes))
    actor_opt = optax.adam(actor_lr)
    critic_opt = optax.adam(critic_lr)
    low, high = target_bounds

    def init(key: jax.Array, input_size: int, act_size: int) -> TD3State:
        return init_actor_critic(actor, critic, actor_opt, critic_opt, key, input_size, act_size)

    def critic_loss(critic_params, target_actor_params, target_critic_params, batch: Batch,
                    noise: jax.Array):
        next_action = smoothed_target_action(actor.apply(target_actor_params, batch.next_inputs),
                                             noise, target_noise, target_noise_clip)
        q1_next, q2_next = critic.apply(target_critic_params, batch.next_inputs, next_action)
        target = jax.lax.stop_gradient(td3_target(batch.reward, q1_next, q2_next, gamma, low, high))
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
        (loss, q1), grads = jax.value_and_grad(critic_loss, has_aux=True)(
            state.critic_params, state.target_actor_params, state.target_critic_params, batch, noise)
        updates, opt_state = critic_opt.update(grads, state.critic_opt_state, state.critic_params)
        state = state.replace(critic_params=optax.apply_updates(state.critic_params, updates),
                              critic_opt_state=opt_state)
        metrics = {"loss/critic": loss, "grad_norm/critic": optax.tree.norm(grads),
                   "q/mean": q1.mean(), "q/min": q1.min(), "q/max": q1.max()}
        return state, metrics

    def actor_step(state: TD3State, batch: Batch) -> tuple[TD3State, dict]:
        """Delayed policy update, then Polyak updates of both targets (TD3 Alg. 1)."""
        (loss, action), grads = jax.value_and_grad(actor_loss, has_aux=True)(
            state.actor_params, state.critic_params, batch)
        updates, opt_state = actor_opt.update(grads, state.actor_opt_state, state.actor_params)
        actor_params = optax.apply_updates(state.actor_params, updates)
        state = state.replace(
            actor_params=actor_params, actor_opt_state=opt_state,
            target_actor_params=polyak(state.target_actor_params, actor_params, tau),
            target_critic_params=polyak(state.target_critic_params, state.critic_params, tau))
        abs_action = jnp.abs(action)
        metrics = {"loss/actor": loss, "grad_norm/actor": optax.tree.norm(grads),
                   "action/abs_mean": abs_action.mean(),
                   "action/saturation": (abs_action > 0.99).mean(dtype=jnp.float32)}
        return state, metrics

    def policy(actor_params, inputs: jax.Array) -> jax.Array:
        return actor.apply(actor_params, inputs)

    return TD3(init=init, critic_step=critic_step, actor_step=actor_step, policy=policy,
               critic_loss=critic_loss, actor_loss=actor_loss)
