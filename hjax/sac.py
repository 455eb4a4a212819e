"""SAC (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications") for goal envs.

Twin critics with clipped double Q, a tanh-squashed diagonal Gaussian policy, and a learned
temperature `alpha = exp(log_alpha)` tuned toward a target entropy (Sec. 5, Eq. 18). The default
target entropy is `-action_dim` (the paper's heuristic, Sec. 6; also Stable-Baselines3 and
Brax). The soft target keeps HER's clipping to the return bound, because the sparse reward's
Q values live in [-1/(1-gamma), 0]; the entropy bonus can push the soft target above 0, and the
clip then holds it there. Evaluation uses the mean action `tanh(mean)`; training samples.

Pure functions over a frozen `SACState`; `make_sac` closes over the static hyperparameters.
Every critic step is followed by an actor, temperature and target update (no delay).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import optax
from flax import struct

from hjax.learner import (Batch, Learner, actor_metrics, bootstrap_discount, clipped_target, critic_metrics,
                          gradient_step, polyak)
from hjax.networks import GaussianActor, TwinCritic

_LOG_2PI = math.log(2.0 * math.pi)


@struct.dataclass
class SACState:
    """Everything SAC carries: no target actor (the soft target samples the online policy)."""

    actor_params: dict
    critic_params: dict
    target_critic_params: dict
    log_alpha: jax.Array  # () float32, log of the temperature
    actor_opt_state: optax.OptState
    critic_opt_state: optax.OptState
    alpha_opt_state: optax.OptState


def tanh_gaussian_sample(mean: jax.Array, log_std: jax.Array, noise: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A reparameterised action `a = tanh(mean + std * noise)` and its log density.

    Change of variables through tanh (SAC Appendix C, Eq. 21):
    `log pi(a) = sum_i [log N(u_i; mean_i, std_i) - log(1 - tanh(u_i)^2)]`, with the stable form
    `log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u))`, which stays finite where tanh saturates.
    Shapes: (..., action_dim) in; action (..., action_dim) and log_prob (...) out."""
    u = mean + jnp.exp(log_std) * noise
    log_normal = -0.5 * jnp.square(noise) - log_std - 0.5 * _LOG_2PI
    log_det = 2.0 * (math.log(2.0) - u - jax.nn.softplus(-2.0 * u))
    return jnp.tanh(u), jnp.sum(log_normal - log_det, axis=-1)


def sac_target(reward: jax.Array, q1_next: jax.Array, q2_next: jax.Array, log_prob_next: jax.Array,
               alpha: jax.Array, gamma: float, low: float, high: float) -> jax.Array:
    """Soft clipped double-Q target (SAC Eq. 3 with TD3's min), clipped to the return bound:
    `y = clip(r + gamma * (min(Q1', Q2')(s', a') - alpha * log pi(a'|s')), low, high)`, a' ~ pi(s')."""
    return clipped_target(reward, jnp.minimum(q1_next, q2_next) - alpha * log_prob_next, gamma, low, high)


def alpha_loss(log_alpha: jax.Array, log_prob: jax.Array, target_entropy: float) -> jax.Array:
    """Temperature loss `-mean(log_alpha * (log pi + target_entropy))` (SAC Eq. 18, in log alpha as
    the authors' code): alpha grows while the policy's entropy `-log pi` is below the target."""
    return -jnp.mean(log_alpha * jax.lax.stop_gradient(log_prob + target_entropy))


def make_sac(*, hidden_sizes, action_size: int, gamma: float, tau: float, actor_lr: float,
             critic_lr: float, alpha_lr: float, init_alpha: float, target_entropy: float | None,
             target_bounds: tuple[float, float], log_init_alpha: float | None = None,
             polyak_keep: float | None = None, critic_layer_norm: bool = False) -> Learner:
    """Build the SAC functions for fixed hyperparameters (target_entropy None: -action_size).

    The scalars may be traced arrays (one grid point of `hjax.sweep`); `log_init_alpha` and
    `polyak_keep` are then the host-computed `log(init_alpha)` and `1 - tau`."""
    actor = GaussianActor(tuple(hidden_sizes), action_size)
    critic = TwinCritic(tuple(hidden_sizes), critic_layer_norm)
    actor_opt = optax.adam(actor_lr)
    critic_opt = optax.adam(critic_lr)
    alpha_opt = optax.adam(alpha_lr)
    entropy_target = (-float(action_size) if target_entropy is None
                      else float(target_entropy) if isinstance(target_entropy, (int, float)) else target_entropy)
    log_init_alpha = math.log(init_alpha) if log_init_alpha is None else log_init_alpha
    low, high = target_bounds

    def sample(actor_params, inputs: jax.Array, noise: jax.Array) -> tuple[jax.Array, jax.Array]:
        mean, log_std = actor.apply(actor_params, inputs)
        return tanh_gaussian_sample(mean, log_std, noise)

    def init(key: jax.Array, input_size: int, act_size: int) -> SACState:
        key_actor, key_critic = jax.random.split(key)
        actor_params = actor.init(key_actor, jnp.zeros((1, input_size), jnp.float32))
        critic_params = critic.init(key_critic, jnp.zeros((1, input_size), jnp.float32),
                                    jnp.zeros((1, act_size), jnp.float32))
        log_alpha = jnp.asarray(log_init_alpha, jnp.float32)
        return SACState(actor_params=actor_params, critic_params=critic_params,
                        target_critic_params=critic_params, log_alpha=log_alpha,
                        actor_opt_state=actor_opt.init(actor_params),
                        critic_opt_state=critic_opt.init(critic_params),
                        alpha_opt_state=alpha_opt.init(log_alpha))

    def critic_loss(critic_params, actor_params, target_critic_params, log_alpha, batch: Batch,
                    noise: jax.Array):
        next_action, log_prob_next = sample(actor_params, batch.next_inputs, noise)
        q1_next, q2_next = critic.apply(target_critic_params, batch.next_inputs, next_action)
        target = jax.lax.stop_gradient(sac_target(batch.reward, q1_next, q2_next, log_prob_next,
                                                  jnp.exp(log_alpha), bootstrap_discount(batch, gamma), low, high))
        q1, q2 = critic.apply(critic_params, batch.inputs, batch.action)
        return jnp.mean(jnp.square(q1 - target)) + jnp.mean(jnp.square(q2 - target)), q1

    def actor_loss(actor_params, critic_params, log_alpha, batch: Batch, noise: jax.Array):
        """`mean(alpha * log pi(a|s) - min(Q1, Q2)(s, a))`, a reparameterised (SAC Eq. 7). Aux:
        log pi of the samples, and the deterministic action `tanh(mean)` the metrics read."""
        mean, log_std = actor.apply(actor_params, batch.inputs)
        action, log_prob = tanh_gaussian_sample(mean, log_std, noise)
        q1, q2 = critic.apply(critic_params, batch.inputs, action)
        loss = jnp.mean(jax.lax.stop_gradient(jnp.exp(log_alpha)) * log_prob - jnp.minimum(q1, q2))
        return loss, (jnp.tanh(mean), log_prob)

    def critic_step(state: SACState, batch: Batch, key: jax.Array) -> tuple[SACState, dict]:
        noise = jax.random.normal(key, batch.action.shape, batch.action.dtype)
        critic_params, opt_state, loss, q1, grads = gradient_step(
            critic_loss, critic_opt, state.critic_params, state.critic_opt_state,
            state.actor_params, state.target_critic_params, state.log_alpha, batch, noise)
        return state.replace(critic_params=critic_params, critic_opt_state=opt_state), critic_metrics(loss, grads, q1)

    def actor_step(state: SACState, batch: Batch, key: jax.Array) -> tuple[SACState, dict]:
        """Policy step, then the temperature step on the same samples' log pi, then Polyak."""
        noise = jax.random.normal(key, batch.action.shape, batch.action.dtype)
        actor_params, actor_opt_state, loss, (mean_action, log_prob), grads = gradient_step(
            actor_loss, actor_opt, state.actor_params, state.actor_opt_state, state.critic_params,
            state.log_alpha, batch, noise)
        log_alpha, alpha_opt_state, loss_alpha, _, _ = gradient_step(
            lambda la: (alpha_loss(la, log_prob, entropy_target), None), alpha_opt, state.log_alpha,
            state.alpha_opt_state)
        state = state.replace(
            actor_params=actor_params, actor_opt_state=actor_opt_state, log_alpha=log_alpha,
            alpha_opt_state=alpha_opt_state,
            target_critic_params=polyak(state.target_critic_params, state.critic_params, tau, polyak_keep))
        # Saturation and |a| of the deterministic action (what evaluation plays), as for TD3 and
        # DDPG: a sample near the bounds is exploration, a mean action there is a saturated policy.
        metrics = {**actor_metrics(loss, grads, mean_action), "loss/alpha": loss_alpha,
                   "policy/entropy": -jnp.mean(log_prob), "policy/alpha": jnp.exp(log_alpha)}
        return state, metrics

    def policy(actor_params, inputs: jax.Array) -> jax.Array:
        """The mean action `tanh(mean)`, for evaluation."""
        return jnp.tanh(actor.apply(actor_params, inputs)[0])

    def explore(actor_params, inputs: jax.Array, key: jax.Array) -> jax.Array:
        """A sample of the policy (its own exploration; no extra Gaussian noise)."""
        noise = jax.random.normal(key, (*inputs.shape[:-1], action_size), inputs.dtype)
        return sample(actor_params, inputs, noise)[0]

    return Learner(init=init, critic_step=critic_step, actor_step=actor_step, policy=policy,
                   explore=explore, critic_loss=critic_loss, actor_loss=actor_loss, policy_delay=1)
