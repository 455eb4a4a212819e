"""DDPG (Lillicrap et al. 2016) as the HER paper and OpenAI baselines' HER run it.

One critic, a deterministic tanh actor, no target-policy smoothing; the actor and both targets
are updated after every critic step; Q targets are clipped to the return bound and the actor
loss carries the action L2 penalty (Andrychowicz et al. 2017, Appendix A; baselines
`her/ddpg.py`: clip_return, action_l2). Baselines moves its targets once per 40 gradient steps;
here they move after every step with `tau`, as in DDPG's Algorithm 1 and hjax's TD3.

Pure functions over a frozen `DDPGState`; `make_ddpg` closes over the static hyperparameters.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from hjax.learner import (ActorCriticState, Batch, Learner, bootstrap_discount, clipped_target, critic_metrics,
                          deterministic_learner, gradient_step)
from hjax.networks import Actor, Critic

DDPGState = ActorCriticState
"""Online actor and critic, their targets, and both optimiser states (the fields TD3 has)."""


def ddpg_target(reward: jax.Array, q_next: jax.Array, gamma: float, low: float, high: float) -> jax.Array:
    """`y = clip(r + gamma * Q'(s', mu'(s')), low, high)` (DDPG Alg. 1 with HER's clip_return)."""
    return clipped_target(reward, q_next, gamma, low, high)


def make_ddpg(*, hidden_sizes, action_size: int, gamma: float, tau: float, actor_lr: float,
              critic_lr: float, action_l2: float, exploration_noise: float,
              target_bounds: tuple[float, float], polyak_keep: float | None = None,
              critic_layer_norm: bool = False) -> Learner:
    """Build the DDPG functions for fixed hyperparameters. The scalars may be traced arrays (one
    grid point of `hjax.sweep`); `polyak_keep` is then the host-computed `1 - tau`."""
    actor = Actor(tuple(hidden_sizes), action_size)
    critic = Critic(tuple(hidden_sizes), critic_layer_norm)
    actor_opt = optax.adam(actor_lr)
    critic_opt = optax.adam(critic_lr)
    low, high = target_bounds

    def critic_loss(critic_params, target_actor_params, target_critic_params, batch: Batch):
        q_next = critic.apply(target_critic_params, batch.next_inputs,
                              actor.apply(target_actor_params, batch.next_inputs))
        target = jax.lax.stop_gradient(ddpg_target(batch.reward, q_next, bootstrap_discount(batch, gamma), low, high))
        q = critic.apply(critic_params, batch.inputs, batch.action)
        return jnp.mean(jnp.square(q - target)), q

    def actor_loss(actor_params, critic_params, batch: Batch):
        """`-mean Q(s, mu(s)) + action_l2 * mean(mu(s)^2)` (baselines HER: pi_loss)."""
        action = actor.apply(actor_params, batch.inputs)
        loss = -jnp.mean(critic.apply(critic_params, batch.inputs, action)) + action_l2 * jnp.mean(jnp.square(action))
        return loss, action

    def critic_step(state: DDPGState, batch: Batch, key: jax.Array) -> tuple[DDPGState, dict]:
        del key  # no target smoothing: the target is deterministic
        critic_params, opt_state, loss, q, grads = gradient_step(
            critic_loss, critic_opt, state.critic_params, state.critic_opt_state,
            state.target_actor_params, state.target_critic_params, batch)
        return state.replace(critic_params=critic_params, critic_opt_state=opt_state), critic_metrics(loss, grads, q)

    # The actor and both targets move after every critic step.
    return deterministic_learner(actor=actor, critic=critic, actor_opt=actor_opt, critic_opt=critic_opt, tau=tau,
                                 exploration_noise=exploration_noise, policy_delay=1,
                                 critic_step=critic_step, critic_loss=critic_loss, actor_loss=actor_loss,
                                 polyak_keep=polyak_keep)
