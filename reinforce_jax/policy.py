"""Trained policies: kept in a run directory, loaded back, and acting.

``save_policies`` writes one ``policies.npz`` per configuration, holding every seed's
final parameters stacked along a leading seed axis. The format, readable with numpy
alone:

* ``params/<path>``: one array per parameter, ``[seeds, ...]``; ``<path>`` is the flax
  parameter path joined with ``/`` (e.g. ``params/params/hidden_0/kernel``);
* ``seeds`` (int64 ``[seeds]``) and ``diverged_at`` (int64 ``[seeds]``: the first
  update whose loss was not finite, -1 if none);
* ``meta``: a JSON string with ``format_version``, ``config`` (the ``TrainConfig``),
  ``updates_done``.

A CartPole policy of 64x64 units is about 20 kB per seed, so a file per run is cheap
even for thousands of runs (a sweep can call ``save_policies`` once per run).

A sweep keeps its runs' final parameters in its chunk files instead (``params/<path>``
with a leading run axis beside ``point`` and ``seed``), written with the chunk's results
in one atomic file; ``load_policies(sweep_dir, point=P)`` reads them back.

``load_policy(run_dir, seed=K)`` rebuilds the network from the saved config and returns a
``Policy`` whose ``act(key, obs, greedy=False)`` samples an action as training did, or
takes the most likely one (categorical: argmax; Gaussian: the mean).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from reinforce_jax import distributions as D
from reinforce_jax.config import TrainConfig
from reinforce_jax.io import from_jsonable, jsonable, write_npz
from reinforce_jax.train import Trainer

FILE_NAME = "policies.npz"
FORMAT_VERSION = 1


def flat_params(params: Any) -> dict[str, np.ndarray]:
    """``{"params/hidden_0/kernel": array, ...}``: a parameter tree by path, on the host."""
    flat = traverse_util.flatten_dict(jax.device_get(params), sep="/")
    return {k: np.asarray(v) for k, v in flat.items()}


def save_policies(path: Path, config: TrainConfig, seeds: list[int], params: Any,
                  diverged_at: np.ndarray | None = None, updates_done: int | None = None) -> None:
    """Write the final parameters of ``seeds`` (a pytree with a leading seed axis) to
    ``path`` (atomically)."""
    arrays = {f"params/{k}": v for k, v in flat_params(params).items()}
    for name, value in arrays.items():
        if value.shape[:1] != (len(seeds),):
            raise ValueError(f"{name} has shape {value.shape}; allowed: a leading axis of "
                             f"{len(seeds)} seeds")
    arrays["seeds"] = np.asarray(seeds, np.int64)
    arrays["diverged_at"] = (np.full(len(seeds), -1, np.int64) if diverged_at is None
                             else np.asarray(diverged_at, np.int64))
    meta = {"format_version": FORMAT_VERSION, "config": jsonable(config),
            "updates_done": updates_done}
    arrays["meta"] = np.asarray(json.dumps(meta))
    write_npz(Path(path), arrays)


def greedy_dist(dist_params: Any, discrete: bool) -> Any:
    """A point mass on the most likely action, in the form the policy outputs (so the
    same sampler acts greedily): one-hot logits of 0 / -inf at the argmax, or the mean
    with log-std -inf (zero spread)."""
    if discrete:
        best = jnp.argmax(dist_params, axis=-1)
        hit = jnp.arange(dist_params.shape[-1]) == best[..., None]
        return jnp.where(hit, 0.0, -jnp.inf).astype(dist_params.dtype)
    mean, log_std = dist_params
    return mean, jnp.full_like(log_std, -jnp.inf)


def sample(key: jax.Array, dist_params: Any, discrete: bool) -> jax.Array:
    """Draw an action the way training does (the rollout's samplers)."""
    if discrete:
        return D.sample_categorical(key, dist_params)
    mean, log_std = dist_params
    return D.sample_normal(key, mean, log_std)


class Policy:
    """One trained policy (or, in ``PolicySet``, many stacked): its network, parameters
    and the config it was trained with.

    Gaussian actions are not clipped: training does not clip them either (gymnax's
    continuous envs clip the action inside ``step``), so the policy acts as it learned.
    A recurrent policy (``config.gru_size > 0``) carries a memory from step to step:
    start each episode with ``initial_memory()``.
    """

    def __init__(self, config: TrainConfig, params: Any, seed: int, diverged_at: int,
                 updates_done: int | None, trainer: Trainer | None = None):
        self.config, self.params, self.seed = config, params, seed
        self.diverged_at, self.updates_done = diverged_at, updates_done
        trainer = Trainer(config) if trainer is None else trainer
        self.trainer = trainer
        self.module, self.spec = trainer.policy, trainer.spec
        self.env, self.env_params = trainer.env, trainer.env_params

    @property
    def discrete(self) -> bool:
        return self.spec.discrete

    @property
    def recurrent(self) -> bool:
        return self.config.gru_size > 0

    def initial_memory(self, batch_shape: tuple[int, ...] = ()) -> jax.Array | None:
        """A recurrent policy's memory at an episode's start (zeros); None otherwise."""
        if not self.recurrent:
            return None
        return jnp.zeros((*batch_shape, self.config.gru_size), jnp.result_type(float))

    def dist(self, obs: jax.Array, greedy: bool = False, params: Any = None,
             memory: jax.Array | None = None) -> tuple[Any, jax.Array | None]:
        """``(action distribution at obs, new memory or None)``; the distribution is a
        point mass on the most likely action if ``greedy``."""
        params = self.params if params is None else params
        if self.recurrent:
            if memory is None:
                raise ValueError(f"gru_size={self.config.gru_size}: a recurrent policy needs "
                                 "its memory; start an episode with policy.initial_memory()")
            (dist_params, _), memory = self.module.apply(params, obs, memory)
        else:
            dist_params, memory = self.module.apply(params, obs)[0], None
        return (greedy_dist(dist_params, self.discrete) if greedy else dist_params), memory

    def rollout_fn(self, params: Any, greedy: bool = False):
        """The policy as ``rollout.rollout`` calls it: ``obs -> dist_params``, or
        ``(obs, memory) -> (dist_params, memory)`` for a recurrent policy."""
        if self.recurrent:
            return lambda obs, memory: self.dist(obs, greedy, params, memory)
        return lambda obs: self.dist(obs, greedy, params)[0]

    def act(self, key: jax.Array, obs: jax.Array, greedy: bool = False,
            memory: jax.Array | None = None):
        """An action for ``obs`` (one observation, or a batch): sampled as in training,
        or the most likely one if ``greedy`` (a Python bool). Pure: jit and vmap it.
        A recurrent policy takes its ``memory`` and returns ``(action, new memory)``."""
        dist, memory = self.dist(obs, greedy, memory=memory)
        action = sample(key, dist, self.discrete)
        return action if memory is None else (action, memory)


class PolicySet(Policy):
    """Every seed of a ``policies.npz``: ``params`` leaves have a leading seed axis."""

    def __init__(self, config: TrainConfig, params: Any, seeds: list[int],
                 diverged_at: np.ndarray, updates_done: int | None,
                 trainer: Trainer | None = None):
        super().__init__(config, params, -1, -1, updates_done, trainer)
        self.seeds, self.diverged_at = seeds, diverged_at

    def __getitem__(self, i: int) -> Policy:
        params = jax.tree.map(lambda x: x[i], self.params)
        return Policy(self.config, params, self.seeds[i], int(self.diverged_at[i]),
                      self.updates_done, self.trainer)


def policy_file(run_dir: Path) -> Path:
    """``run_dir``'s policies file; a clear ``ValueError`` when there is none."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"run_dir={str(run_dir)!r} is not a directory; allowed: a directory "
                         "written by `reinforce-jax train`")
    path = run_dir / FILE_NAME
    if not path.is_file():
        raise ValueError(f"run_dir={str(run_dir)!r} has no kept policies ({FILE_NAME}); "
                         "allowed: a directory written by `reinforce-jax train` (runs from "
                         "before policies were kept, or interrupted before the first "
                         "chunk of updates, have none)")
    return path


def load_policies(run_dir: Path, point: int | None = None) -> PolicySet:
    """Every seed kept in ``run_dir`` (or a ``policies.npz`` path), checked against the
    network its config builds. For a sweep directory, the finished runs of configuration
    ``point`` (which may be left out when the sweep has one)."""
    path = Path(run_dir)
    if (path / "sweep.json").is_file():
        return _load_sweep_policies(path, point)
    if point is not None:
        raise ValueError(f"point={point!r} with a train run; allowed: point only for a "
                         "sweep directory")
    path = path if path.is_file() else policy_file(path)
    with np.load(path) as data:
        if not {"meta", "seeds", "diverged_at"} <= set(data.files):
            raise ValueError(f"{str(path)!r} is not a kept-policies file; allowed: a run "
                             f"directory or its {FILE_NAME}")
        meta = json.loads(str(data["meta"]))
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{str(path)!r} has format_version "
                             f"{meta.get('format_version')!r}; allowed: {FORMAT_VERSION}")
        arrays = {k[len("params/"):]: data[k] for k in data.files if k.startswith("params/")}
        seeds = [int(s) for s in data["seeds"]]
        diverged_at = np.asarray(data["diverged_at"], np.int64)
    fields = from_jsonable(meta["config"])
    unknown = sorted(set(fields) - set(TrainConfig.__dataclass_fields__))
    if unknown:
        raise ValueError(f"{str(path)!r} has config fields {', '.join(unknown)} that this "
                         "version of reinforce_jax does not know")
    return _policy_set(path, TrainConfig(**fields), arrays, seeds, diverged_at,
                       meta.get("updates_done"))


def _load_sweep_policies(out: Path, point: int | None) -> PolicySet:
    from reinforce_jax.sweep import SweepDir

    sweep_dir = SweepDir(out)
    plan = sweep_dir.load_plan()
    count = len(plan.points)
    if point is None and count == 1:
        point = 0
    if isinstance(point, bool) or not isinstance(point, (int, np.integer)) \
            or not 0 <= point < count:
        raise ValueError(f"point={point!r}; allowed: a configuration index 0..{count - 1} of "
                         f"the sweep in {str(out)!r} (see its report)")
    runs: dict[int, tuple[dict, int]] = {}  # seed -> (its parameters, diverged_at)
    updates_done = []  # a chunk whose runs all diverged stopped early
    for f in sweep_dir.chunk_files():
        with np.load(f) as data:
            keys = [k for k in data.files if k.startswith("params/")]
            for r, (p, s) in enumerate(zip(data["point"], data["seed"])):
                if int(p) == point and keys:
                    runs[int(s)] = ({k[len("params/"):]: data[k][r] for k in keys},
                                    int(data["diverged_at"][r]))
                    updates_done.append(int(data["metric/loss"].shape[1]))
    if not runs:
        raise ValueError(f"point={point!r} of the sweep in {str(out)!r} has no finished run "
                         "with kept parameters yet")
    seeds = sorted(runs)
    arrays = {k: np.stack([runs[s][0][k] for s in seeds]) for k in runs[seeds[0]][0]}
    diverged_at = np.asarray([runs[s][1] for s in seeds], np.int64)
    config = plan.points[point].config
    return _policy_set(out, config, arrays, seeds, diverged_at, min(updates_done))


def _policy_set(path: Path, config: TrainConfig, arrays: dict[str, np.ndarray],
                seeds: list[int], diverged_at: np.ndarray, updates_done: int | None
                ) -> PolicySet:
    """Check the arrays against the network ``config`` builds, then wrap them."""
    trainer = Trainer(config)
    template = traverse_util.flatten_dict(
        jax.eval_shape(trainer.init, jax.random.key(0)).params, sep="/")
    if set(template) != set(arrays):
        raise ValueError(f"{str(path)!r} holds parameters {sorted(arrays)}; its config "
                         f"builds {sorted(template)}")
    for name, like in template.items():
        if arrays[name].shape != (len(seeds), *like.shape):
            raise ValueError(f"{str(path)!r} parameter {name} has shape "
                             f"{arrays[name].shape}; its config builds {like.shape} per seed")
    params = traverse_util.unflatten_dict(
        {k: jnp.asarray(v, template[k].dtype) for k, v in arrays.items()}, sep="/")
    return PolicySet(config, params, seeds, diverged_at, updates_done, trainer)


def load_policy(run_dir: Path, seed: int | None = None, point: int | None = None) -> Policy:
    """The policy of seed ``seed`` kept in ``run_dir``; ``seed`` may be left out when
    the run has one seed. For a sweep directory, ``point`` picks the configuration."""
    policies = load_policies(run_dir, point)
    if seed is None:
        if len(policies.seeds) != 1:
            raise ValueError(f"seed is missing; allowed: one of the kept seeds "
                             f"{_list(policies.seeds)}")
        seed = policies.seeds[0]
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) \
            or seed not in policies.seeds:
        raise ValueError(f"seed={seed!r}; allowed: one of the kept seeds "
                         f"{_list(policies.seeds)}")
    return policies[policies.seeds.index(int(seed))]


def _list(seeds: list[int]) -> str:
    if len(seeds) > 1 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}..{seeds[-1]}"
    return ", ".join(map(str, seeds))
