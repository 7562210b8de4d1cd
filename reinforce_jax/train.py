"""The pure training program: ``make_train(config) -> train(key) -> (state, metrics)``.

``jax.jit(jax.vmap(make_train(cfg)))(keys)`` trains one independent agent per key.
Nothing in here reduces over the seed axis, so a diverging seed cannot touch another.
``Trainer`` exposes the same program in pieces (init, one chunk of updates) for the
host-side driver in ``reinforce_jax.driver``.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from reinforce_jax import distributions as D
from reinforce_jax import returns as R
from reinforce_jax.config import HyperParams, TrainConfig
from reinforce_jax.envs import EnvSpec, make_env
from reinforce_jax.losses import reinforce_objective
from reinforce_jax.optim import clip_by_global_norm_torch, make_optimizer, set_learning_rate
from reinforce_jax.policies import DiscretePolicy, GaussianPolicy
from reinforce_jax.rollout import (EnvCarry, Transition, any_run, computed_steps, reset_envs,
                                   rollout)

FIXED_DEFAULT_HORIZON = 128


class RunnerState(NamedTuple):
    """Everything one seed carries from update to update."""

    params: Any
    opt_state: Any
    env: EnvCarry  # persists across updates in fixed mode; unused in episodic mode
    key: jax.Array
    last_return: jax.Array  # most recent mean finished-episode return (for metrics)
    last_length: jax.Array
    updates: jax.Array  # updates done so far (int32): drives the learning-rate anneal


class Batch(NamedTuple):
    """What one update learns from (``Trainer.collect``)."""

    traj: Transition  # the window played, [T, N]
    G: jax.Array  # [T, N]: what each log-probability is weighted with
    mask: jax.Array  # bool [T, N]: the terms the loss counts
    weights: jax.Array | None  # gamma^t [T, N] with gamma_t_weighting, else None
    sequence: tuple | None  # recurrent: (memory at the window's start, episode starts)
    env: EnvCarry  # the envs after the window
    key: jax.Array  # the seed's key for the next update


METRIC_NAMES = ("episode_return", "episode_length", "episodes", "env_steps", "computed_steps",
                "loss", "pg_loss", "value_loss", "entropy", "grad_norm")
"""Per-update metrics. ``env_steps`` counts the steps inside episodes (what learning
sees); ``computed_steps`` every env step computed, padding included."""


def make_policy(config: TrainConfig, spec: EnvSpec):
    """The flax module for ``config`` on an env with ``spec``."""
    torso = config.torso
    if torso == "auto":
        torso = "conv" if len(spec.obs_shape) == 3 else "mlp"
    obs = {"torso": torso, "obs_ndim": len(spec.obs_shape),
           "obs_categories": spec.obs_categories, "gru_size": config.gru_size}
    if spec.discrete:
        return DiscretePolicy(spec.action_dim, tuple(config.hidden_sizes), config.activation,
                              config.value_head, config.head_bias, **obs)
    return GaussianPolicy(spec.action_dim, tuple(config.hidden_sizes), config.activation,
                          config.value_head, config.log_std, config.log_std_min,
                          config.log_std_max, head_bias=config.head_bias, **obs)


def log_prob_and_entropy(dist_params: Any, actions: jax.Array, discrete: bool):
    """Per-step log pi(a|s) and entropy, [T, N] each."""
    if discrete:
        return D.categorical_log_prob(dist_params, actions), D.categorical_entropy(dist_params)
    mean, log_std = dist_params
    return D.normal_log_prob(mean, log_std, actions), D.normal_entropy(log_std)


def compute_targets(
    config: TrainConfig,
    traj: Transition,
    gamma: jax.Array,
    next_values: jax.Array | None,
    last_value: jax.Array | None,
) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    """Returns to weight the log-probs with, the loss mask, and gamma^t weights.

    Args:
      traj: the rollout [T, N].
      next_values: V(next_obs) [T, N] for bootstrapping truncations (fixed mode with a
        baseline), else None.
      last_value: V(obs after the window) [N] (fixed mode with a baseline), else None.

    Returns:
      ``(G [T, N], mask [T, N], weights [T, N] or None)``.
    """
    dones = traj.terminated | traj.truncated
    rewards = traj.reward
    if next_values is not None:
        # A time limit is not a terminal state: credit the value of where it stopped.
        rewards = rewards + gamma * traj.truncated * next_values
    G = R.discounted_returns(rewards, dones, gamma, last_value)
    mask = traj.valid
    if config.rollout == "fixed" and config.value_head == "none":
        mask = mask & R.finished_mask(dones)  # unknown tails cannot be credited
    if config.return_mode == "episode":
        G = R.episode_start_values(G, dones)
    if config.baseline == "group":
        G = G - R.leave_one_out_mean(G, mask, config.group_size)
    if config.normalize_returns == "batch":
        G = R.normalize(G, mask)
    elif config.normalize_returns == "episode":
        G = jax.vmap(R.normalize, in_axes=1, out_axes=1)(G, mask)
    weights = R.discount_weights(traj.step, gamma) if config.gamma_t_weighting else None
    return G, mask, weights


class Trainer:
    """The training program for one config, split into jittable pieces.

    All methods act on one seed; ``vmap`` them for many. ``hp`` is a ``HyperParams``
    of traced scalars.
    """

    def __init__(self, config: TrainConfig):
        self.config = config.validate()
        self.env, self.env_params, self.spec = make_env(config.env)
        self.policy = make_policy(config, self.spec)
        self.tx = make_optimizer(config.optimizer, separate_value=config.baseline == "separate")
        self.num_steps = self.config.rollout_length(self.spec)
        if (message := value_step_overshoot(config, self.num_steps)) is not None:
            warnings.warn(message, StabilityWarning, stacklevel=2)

    def init(self, key: jax.Array) -> RunnerState:
        key_params, key_env, key_run = jax.random.split(key, 3)
        obs = jnp.zeros((1, *self.spec.obs_shape), jnp.float32)
        params = self.policy.init(key_params, obs, *self.zero_memory(1))
        env_carry = self.reset(key_env)
        zero = jnp.zeros((), jnp.float32)
        return RunnerState(params, self.tx.init(params), env_carry, key_run, zero, zero,
                           jnp.zeros((), jnp.int32))

    @property
    def recurrent(self) -> bool:
        return self.config.gru_size > 0

    def zero_memory(self, num_envs: int) -> tuple:
        """``(zeros [num_envs, gru_size],)`` for a recurrent policy, else ``()``: the extra
        argument ``policy.apply`` takes."""
        return (jnp.zeros((num_envs, self.config.gru_size)),) if self.recurrent else ()

    def reset(self, key: jax.Array):
        """Every env reset, a recurrent policy's memory zeroed."""
        carry = reset_envs(key, self.env, self.env_params, self.config.num_envs,
                           self.config.group_size)
        return carry._replace(memory=self.zero_memory(self.config.num_envs)[0]) \
            if self.recurrent else carry

    def act_fn(self, params):
        """``obs -> dist_params`` (or ``(obs, memory) -> (dist_params, memory)``), for
        ``rollout``."""
        if self.recurrent:
            def act(obs, memory):
                (dist_params, _), memory = self.policy.apply(params, obs, memory)
                return dist_params, memory
            return act
        return lambda obs: self.policy.apply(params, obs)[0]

    def play(self, key: jax.Array, policy_fn, start: EnvCarry,
             whole_episodes: bool = False) -> tuple[EnvCarry, Transition]:
        """This config's rollout from ``start`` with ``policy_fn`` (``act_fn``'s form):
        ``(envs after the window, transitions [T, N])``. ``whole_episodes`` plays one
        episode per env up to the env's own time limit, whatever the config's window
        (evaluation)."""
        cfg = self.config
        if whole_episodes:
            return rollout(key, policy_fn, self.env, self.env_params, start,
                           self.spec.max_steps, self.spec.discrete, False)
        return rollout(key, policy_fn, self.env, self.env_params, start, self.num_steps,
                       self.spec.discrete, cfg.rollout == "fixed", cfg.group_size)

    def collect(self, state: RunnerState, hp: HyperParams) -> Batch:
        """The collect step of an update: play the window with the current policy and
        compute what the learner weights its log-probabilities with."""
        cfg = self.config
        key, key_reset, key_rollout = jax.random.split(state.key, 3)
        start = self.reset(key_reset) if cfg.rollout == "episodic" else state.env
        env_carry, traj = self.play(key_rollout, self.act_fn(state.params), start)

        next_values = last_value = None
        if cfg.rollout == "fixed" and cfg.value_head != "none":
            value_fn = lambda obs: self.policy.apply(state.params, obs)[1]  # noqa: E731
            next_values = jax.lax.stop_gradient(value_fn(traj.next_obs))
            last_value = jax.lax.stop_gradient(value_fn(env_carry.obs))
        G, mask, weights = compute_targets(cfg, traj, hp.gamma, next_values, last_value)
        # a recurrent learner re-runs the window from the memory it started with, resetting
        # it where an episode starts (step 0 inside its episode)
        sequence = (jax.lax.stop_gradient(start.memory), traj.step == 0) if self.recurrent \
            else None
        return Batch(traj, G, mask, weights, sequence, env_carry, key)

    def update(self, state: RunnerState, hp: HyperParams) -> tuple[RunnerState, dict]:
        """One update: the collect step, then the learn step; returns per-update scalar
        metrics."""
        return self.learn_from(state, self.collect(state, hp), hp)

    def learn_from(self, state: RunnerState, batch: Batch, hp: HyperParams
                   ) -> tuple[RunnerState, dict]:
        """The learn step of an update, on the batch ``collect`` gave for ``state``:
        one optimizer step (or one per time step), and the update's metrics."""
        cfg = self.config
        traj = batch.traj
        lr_scale = 1.0
        if cfg.anneal_lr:
            # int32 / int is float32 even under x64; divide in the default float instead
            updates_done = state.updates.astype(jnp.result_type(float))
            lr_scale = jnp.maximum(1.0 - updates_done / cfg.num_updates, 0.0)
        params, opt_state, loss, aux, grad_norm = self.learn(
            state.params, state.opt_state, hp, lr_scale, traj.obs, traj.action, batch.G,
            batch.mask, batch.weights, batch.sequence)

        done = traj.terminated | traj.truncated
        episodes = jnp.sum(done)
        denom = jnp.maximum(episodes, 1)
        ep_return = jnp.where(episodes > 0, jnp.sum(traj.episode_return) / denom,
                              state.last_return)
        ep_length = jnp.where(episodes > 0, jnp.sum(traj.episode_length) / denom,
                              state.last_length)
        metrics = {
            "episode_return": ep_return, "episode_length": ep_length,
            "episodes": episodes, "env_steps": jnp.sum(traj.valid),
            "computed_steps": traj.valid.shape[1] * computed_steps(
                traj.valid, cfg.rollout == "fixed"),
            "loss": loss, "grad_norm": grad_norm, **aux,
        }
        new_state = RunnerState(params, opt_state, batch.env, batch.key,
                                ep_return.astype(jnp.float32), ep_length.astype(jnp.float32),
                                state.updates + 1)
        return new_state, metrics

    def learn(self, params, opt_state, hp: HyperParams, lr_scale, obs, action, G, mask,
              weights, sequence=None):
        """The learning step of one update on a [T, N] batch.

        ``update_every="batch"``: one optimizer step on the whole batch.
        ``"step"``: one optimizer step per time index t, in order, on row t (the envs'
        step-t terms, reduced over the envs valid at t), each step seeing the parameters
        the previous one left. With one env this is Sutton & Barto's per-time-step
        algorithm; with a baseline, δ_t = G_t - V(S_t) uses V before step t changes it,
        so the value and policy steps of the book's box come out of one gradient.
        A row with no valid env (every episode over) changes nothing.

        ``sequence``: for a recurrent policy, ``(memory at the window's start [N, H],
        episode starts bool [T, N])``.

        Returns ``(params, opt_state, loss, aux, grad_norm)``; in step mode the metrics
        are means over the steps taken.
        """
        if self.config.update_every == "batch":
            (loss, aux), grads = self.loss_and_grad(params, hp, obs, action, G, mask, weights,
                                                    sequence)
            params, opt_state, grad_norm = self.apply_gradient(params, opt_state, grads, hp,
                                                               lr_scale)
            return params, opt_state, loss, aux, grad_norm

        weights = jnp.ones_like(G) if weights is None else weights

        def one(carry, row):
            params, opt_state = carry
            o, a, g, m, w = jax.tree.map(lambda x: x[None], row)  # a [1, N] batch
            (loss, aux), grads = self.loss_and_grad(params, hp, o, a, g, m, w)
            new = self.apply_gradient(params, opt_state, grads, hp, lr_scale)
            taken = jnp.any(m)
            params, opt_state = jax.tree.map(lambda n, old: jnp.where(taken, n, old),
                                             new[:2], (params, opt_state))
            return (params, opt_state), (loss, aux, new[2], taken)

        (params, opt_state), (losses, auxs, norms, taken) = jax.lax.scan(
            one, (params, opt_state), (obs, action, G, mask, weights))
        count = jnp.maximum(jnp.sum(taken), 1)
        mean = lambda x: jnp.sum(jnp.where(taken, x, 0.0)) / count  # noqa: E731
        return params, opt_state, mean(losses), jax.tree.map(mean, auxs), mean(norms)

    def apply_gradient(self, params, opt_state, grads, hp: HyperParams, lr_scale):
        """Clip (torch-style, one global norm over all of the run's parameters) and take
        one optimizer step; the value network, if it has its own optimizer, moves at
        ``hp.value_learning_rate``. Returns ``(params, opt_state, pre-clip norm)``."""
        grads, grad_norm = clip_by_global_norm_torch(grads, hp.max_grad_norm)
        value_lr = None if hp.value_learning_rate is None else hp.value_learning_rate * lr_scale
        opt_state = set_learning_rate(opt_state, hp.learning_rate * lr_scale, value_lr)
        updates, opt_state = self.tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, grad_norm

    def apply_sequence(self, params, obs, memory, starts):
        """A recurrent policy over a [T, N] window: the memory is carried step to step and
        reset to zeros where ``starts`` [T, N]; returns ``(dist_params, values)`` [T, N]."""
        def one(memory, x):
            o, start = x
            memory = jnp.where(start[:, None], 0.0, memory)
            out, memory = self.policy.apply(params, o, memory)
            return memory, out
        return jax.lax.scan(one, memory, (obs, starts))[1]

    def loss_and_grad(self, params, hp: HyperParams, obs, action, G, mask, weights,
                      sequence=None):
        """The objective's value, metrics and gradient on a [T, N] batch.

        The batch is cut along time into slices of about ``grad_chunk_rows`` rows whose
        summed losses and gradients are accumulated under ``lax.scan``: a slice's
        activations stay in cache instead of streaming [T*N, width] arrays through
        memory. A slice with no term in the loss (after every episode of every run ended)
        is skipped: it would add exact zeros. Sums become means by dividing once by the
        valid count at the end.
        """
        cfg = self.config

        def summed(p, batch):
            obs, action, G, mask, weights = batch
            if sequence is None:
                dist_params, values = self.policy.apply(p, obs)
            else:
                dist_params, values = self.apply_sequence(p, obs, *sequence)
            log_probs, entropy = log_prob_and_entropy(dist_params, action, self.spec.discrete)
            return reinforce_objective(log_probs, G, entropy, mask, values, weights,
                                       hp.ent_coef, hp.vf_coef, "sum")

        grad_fn = jax.value_and_grad(summed, has_aux=True)
        batch = (obs, action, G, mask, weights)
        T, N = mask.shape
        steps = T if cfg.grad_chunk_rows == 0 else max(1, cfg.grad_chunk_rows // N)
        if sequence is not None:
            steps = T  # the memory runs through the whole window: no time slices
        if steps >= T:
            out = grad_fn(params, batch)
        else:
            chunks = -(-T // steps)
            pad = chunks * steps - T  # padded steps carry mask 0: they add nothing

            def cut(x):
                x = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1))
                return x.reshape(chunks, steps, *x.shape[1:])

            zero = jax.tree.map(jnp.zeros_like, jax.eval_shape(
                grad_fn, params, jax.tree.map(lambda x: x[:steps], batch)))

            def add(acc, chunk):
                return jax.tree.map(jnp.add, acc, grad_fn(params, chunk))

            def body(acc, chunk):
                if cfg.rollout == "fixed":  # every slice has valid steps
                    return add(acc, chunk), None
                counts = any_run(jnp.any(chunk[3]))  # chunk[3]: its mask
                return jax.lax.cond(counts, add, lambda acc, _: acc, acc, chunk), None

            out, _ = jax.lax.scan(body, zero, jax.tree.map(cut, batch))
        if cfg.reduction == "mean":
            scale = 1.0 / jnp.maximum(jnp.sum(mask), 1).astype(jnp.result_type(float))
            out = jax.tree.map(lambda x: x * scale.astype(x.dtype), out)
        return out

    def run_updates(self, state: RunnerState, hp: HyperParams, num_updates: int):
        """``num_updates`` updates under ``lax.scan``; metrics are [num_updates]."""
        return jax.lax.scan(lambda s, _: self.update(s, hp), state, None, length=num_updates)


class StabilityWarning(UserWarning):
    """A configuration that is known to diverge."""


def value_step_overshoot(config: TrainConfig, num_steps: int) -> str | None:
    """Why ``config``'s value step must overshoot, or None when it need not.

    Under SGD, one step on ``vf_coef * MSE(V, G)`` moves V(s) by at least (through the
    value head's bias alone) ``lr_v * 2 * vf_coef * rows * (G - V)``, where ``rows`` is
    how many squared errors the loss adds up without dividing: ``num_steps * num_envs``
    for one summed step on a batch of whole episodes, ``num_envs`` for a summed per-step
    update, 1 for a mean. Above 2 each step lands further past G than it started, and V
    (and with it the advantages) oscillates with growing amplitude. Adam's normalized
    step has no such bound, and a gradient clip can hide it for a while.
    """
    if config.optimizer != "sgd" or config.value_head == "none":
        return None
    lr_v = config.hyperparams.value_learning_rate
    rows = 1
    if config.reduction == "sum":
        rows = config.num_envs * (num_steps if config.update_every == "batch" else 1)
    gain = lr_v * 2 * config.vf_coef * rows
    if gain <= 2:
        return None
    safe = 2 / (2 * config.vf_coef * rows)
    return (f"the value step overshoots: with SGD and reduction={config.reduction!r}, one "
            f"update moves V by value_lr * 2 * vf_coef * {rows} rows * (G - V) = "
            f"{gain:.3g} * (G - V), more than 2, once episodes reach {num_steps} steps, so "
            f"V and then the policy diverge. Fix: update_every='step', reduction='mean', "
            f"or a value step size (value_learning_rate) below {safe:.3g}")


def make_train(config: TrainConfig):
    """Return ``train(key, hp=None) -> (RunnerState, metrics)``, pure and vmappable.

    ``metrics`` maps each name in ``METRIC_NAMES`` to an array [num_updates].
    ``hp`` defaults to ``config.hyperparams``; pass traced values to vmap over them.
    """
    trainer = Trainer(config)

    def train(key: jax.Array, hp: HyperParams | None = None):
        hp = config.hyperparams if hp is None else hp
        return trainer.run_updates(trainer.init(key), hp, trainer.config.num_updates)

    return train
