"""Placement on devices with JAX's own sharding: a `Mesh` of ('seeds', 'data') axes.

The trainer's data has an explicit shard axis (`Config.data_shards`): the replay buffer is a stack
of per-shard buffers, and each shard samples its own part of the HER batch. On one device the
shards are a vmapped axis; on several, `jit` places the shard axis and the env batch along the
mesh's 'data' axis, keeps parameters replicated, and XLA inserts the all-reduce of the gradients
(the mean over the batch spans every shard). Seeds of `train(config, num_seeds=N)` may be spread
along the 'seeds' axis. Multi-host runs use the same code after `jax.distributed.initialize()`.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from hjax.config import Config


@dataclasses.dataclass(frozen=True)
class Layout:
    """How a run is laid out: logical data shards and the device mesh (None on one device)."""

    data_shards: int
    data_devices: int
    seed_devices: int
    mesh: Mesh | None

    @property
    def num_devices(self) -> int:
        return self.data_devices * self.seed_devices


def layout(config: Config, num_seeds: int | None) -> Layout:
    """Resolve the device counts of `config` on this runtime (errors name the field)."""
    available = jax.device_count()
    seed_devices = config.seed_devices
    if seed_devices > 1 and num_seeds is None:
        raise ValueError(f"invalid seed_devices={seed_devices}; allowed: 1 without num_seeds (a seed axis "
                         "needs train(config, num_seeds=N))")
    if num_seeds is not None and num_seeds % seed_devices:
        raise ValueError(f"invalid seed_devices={seed_devices}; allowed: a divisor of num_seeds={num_seeds}")
    data_devices = config.num_devices if config.num_devices is not None else max(available // seed_devices, 1)
    if data_devices * seed_devices > available:
        raise ValueError(f"invalid num_devices={config.num_devices} with seed_devices={seed_devices}; allowed: "
                         f"num_devices * seed_devices <= {available} devices on this runtime")
    shards = config.data_shards if config.data_shards is not None else data_devices
    field = "data_shards" if config.data_shards is not None else "num_devices"
    config.check_data_shards(shards, field)
    if shards % data_devices:
        raise ValueError(f"invalid data_shards={shards}; allowed: a multiple of the {data_devices} data devices")
    if config.num_eval_envs % data_devices:
        raise ValueError(f"invalid num_eval_envs={config.num_eval_envs}; allowed: a multiple of the "
                         f"{data_devices} data devices")
    mesh = None
    if data_devices * seed_devices > 1:
        devices = np.asarray(jax.devices()[: data_devices * seed_devices]).reshape(seed_devices, data_devices)
        mesh = Mesh(devices, ("seeds", "data"))
    return Layout(data_shards=shards, data_devices=data_devices, seed_devices=seed_devices, mesh=mesh)


def constrain_batch(tree, mesh: Mesh | None):
    """Inside jit: split the leading (env or shard) axis of every leaf along 'data'."""
    if mesh is None:
        return tree
    sharding = NamedSharding(mesh, P("data"))
    return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, sharding) if x.ndim else x, tree)


def state_shardings(state_shape, lay: Layout, seeded: bool):
    """Shardings of a TrainerState: buffer leaves split along 'data' on their shard axis, the
    rest replicated; with seeds, the leading seed axis along 'seeds'."""
    lead = ("seeds",) if seeded else ()

    def spec(path, leaf):
        in_buffer = any(getattr(k, "name", None) == "buffer" for k in path)
        if in_buffer and leaf.ndim > len(lead):
            return NamedSharding(lay.mesh, P(*lead, "data"))
        return NamedSharding(lay.mesh, P(*lead) if leaf.ndim >= len(lead) and lead else P())

    return jax.tree_util.tree_map_with_path(spec, state_shape)
