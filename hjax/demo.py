"""The README's main job (random-policy rollout until the trainer lands)."""

import jax
import jax.numpy as jnp

import envs


def main() -> None:
    env = envs.make("point_mass")
    n = 1024

    def episode(key):
        key_reset, key_act = jax.random.split(key)

        def body(state, k):
            state = env.step(state, jax.random.uniform(k, (env.action_size,), minval=-1, maxval=1))
            return state, state.metrics

        _, m = jax.lax.scan(body, env.reset(key_reset), jax.random.split(key_act, env.episode_length))
        return m["success"][-1], m["distance"][-1]

    success, dist = jax.jit(jax.vmap(episode))(jax.random.split(jax.random.PRNGKey(0), n))
    print(f"random policy on point_mass, {n} episodes: success rate {float(jnp.mean(success)):.3f}, "
          f"final distance {float(jnp.mean(dist)):.3f}")


if __name__ == "__main__":
    main()
