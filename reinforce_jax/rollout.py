"""Vectorized rollouts: ``num_envs`` gymnax environments stepped together under ``lax.scan``.

Two episode-boundary modes (see README, "Episode boundaries"):

* episodic (``auto_reset=False``): every env starts from reset and plays one episode;
  steps after its end are marked invalid. If the window ends first, the last step is
  marked truncated. This is the exact Monte-Carlo estimator.
* fixed horizon (``auto_reset=True``): envs auto-reset and the carry persists across
  updates; an episode may straddle windows.

Both step the env through its public ``step``, so a gymnax wrapper (or any override of
``step``) takes effect. The one shortcut: in episodic mode, an env whose ``step`` is
gymnax's own is stepped without the auto-reset that the mask would discard anyway. The
action noise and the env keys of a window are drawn before it, in batched calls: the
values a step-by-step draw gives, in far fewer ops per step.

``terminated`` (a terminal state, value 0) and ``truncated`` (a time limit, the state
still has value) are kept apart throughout.

An episodic window stops early: it runs in blocks of steps and stops after the block in
which the last env's episode ended (the last of every run's envs, when runs are vmapped
with ``axis_name=RUN_AXIS``). The steps it skips are padding the mask would discard;
they come out as zeros (``valid`` False).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from gymnax.environments.environment import Environment

from reinforce_jax import distributions as D

RUN_AXIS = "runs"
"""The axis name under which the driver vmaps independent runs (seeds, sweep points)."""


def runs_in_batch() -> int:
    """How many runs the program is vmapped over with ``axis_name=RUN_AXIS``; 1 if none."""
    try:
        return jax.lax.axis_size(RUN_AXIS)
    except NameError:
        return 1


def any_run(flag: jax.Array) -> jax.Array:
    """Bools or-ed elementwise over the runs vmapped with ``RUN_AXIS`` (as given if none).

    A loop condition that is the same for every run stays a real branch under ``vmap``;
    one that differs per run makes ``vmap`` run every branch and select the results.
    Runs still never see each other's values: only how many steps are computed.
    """
    try:
        return jax.lax.pmax(flag.astype(jnp.int32), RUN_AXIS) > 0
    except NameError:
        return flag


def block_size(num_steps: int, target: int = 32) -> int | None:
    """Steps per block of an early-exiting episodic window: the largest divisor of
    ``num_steps`` up to ``target``, or None (one plain scan) when that is below 8."""
    best = max(d for d in range(1, min(num_steps, target) + 1) if num_steps % d == 0)
    return best if best >= 8 else None


def computed_steps(valid: jax.Array, auto_reset: bool) -> jax.Array:
    """Steps per env a window of ``valid`` [T, N] computed: T for a fixed window; for an
    episodic one, every block that began with an env (of any run) still in its episode."""
    num_steps = valid.shape[0]
    block = None if auto_reset else block_size(num_steps)
    if block is None:
        return jnp.int32(num_steps)
    started = any_run(jnp.any(valid[::block], axis=1))
    return block * jnp.sum(started, dtype=jnp.int32)


class EnvCarry(NamedTuple):
    """Per-env state carried between steps (and, in fixed mode, between updates)."""

    obs: jax.Array  # [N, *obs_shape]
    state: Any  # gymnax env state, leaves [N, ...]
    alive: jax.Array  # bool [N]: the current episode has not ended (episodic mode)
    step: jax.Array  # int32 [N]: steps taken in the current episode
    ret: jax.Array  # float [N]: undiscounted return so far in the current episode
    memory: Any = None  # a recurrent policy's state [N, H], zero at an episode's start


class Transition(NamedTuple):
    """One rollout, time-major: every field is [T, N, ...]."""

    obs: jax.Array  # observation the action was chosen from
    action: jax.Array  # int32 [T, N] or float [T, N, D]
    reward: jax.Array  # float [T, N]; 0 on invalid steps
    terminated: jax.Array  # bool [T, N]
    truncated: jax.Array  # bool [T, N]
    valid: jax.Array  # bool [T, N]: the step belongs to an episode (not padding)
    step: jax.Array  # int32 [T, N]: index of the step inside its episode
    next_obs: jax.Array  # observation reached (before any auto-reset)
    episode_return: jax.Array  # float [T, N]: the finished episode's return where it ends
    episode_length: jax.Array  # int32 [T, N]: the finished episode's length where it ends


def sample_action(key: jax.Array, dist_params: Any, discrete: bool) -> jax.Array:
    """Sample from the policy output: logits [..., A] or (mean, log_std) [..., D]."""
    return action_from_noise(dist_params, action_noise(key, dist_params, discrete), discrete)


def action_noise(key: jax.Array, dist_params: Any, discrete: bool) -> jax.Array:
    """The random numbers ``sample_action(key, dist_params, ...)`` uses; ``dist_params``
    may be ``ShapeDtypeStruct`` s (only shapes and dtypes are read)."""
    if discrete:
        return D.categorical_noise(key, dist_params)
    return D.normal_noise(key, dist_params[0])


def action_from_noise(dist_params: Any, noise: jax.Array, discrete: bool) -> jax.Array:
    if discrete:
        return D.categorical_from_noise(dist_params, noise)
    mean, log_std = dist_params
    return D.normal_from_noise(mean, log_std, noise)


def env_keys(key: jax.Array, num_envs: int, group_size: int = 1) -> jax.Array:
    """One env key per env; consecutive envs in groups of ``group_size`` share theirs."""
    keys = jax.random.split(key, num_envs // group_size)
    return keys if group_size == 1 else jnp.repeat(keys, group_size, axis=0)


def reset_envs(key: jax.Array, env: Any, env_params: Any, num_envs: int,
               group_size: int = 1) -> EnvCarry:
    """Reset ``num_envs`` envs; independent keys, or one shared key per group."""
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(env_keys(key, num_envs, group_size),
                                                         env_params)
    # returns are float whatever the observation's dtype (FourRooms observes int32)
    return EnvCarry(obs, state, jnp.ones(num_envs, bool), jnp.zeros(num_envs, jnp.int32),
                    jnp.zeros(num_envs, jnp.result_type(float)))


def _stock_step(env: Any) -> bool:
    """Whether ``env.step`` is gymnax's own (not overridden, no wrapper around the env)."""
    return getattr(type(env), "step", None) is Environment.step


def _step_no_reset(env: Any, key_step: jax.Array, state: Any, action: jax.Array,
                   params: Any):
    """gymnax's ``Environment.step`` for one env without its auto-reset, ``key_step``
    being the first half of the split ``step`` makes of its key. Episodic mode masks every
    step after an episode's end, so the reset gymnax computes at every step (a fresh
    random state, then a select over the whole state) would be thrown away; skipping it
    saves about a sixth of an episodic CartPole update. Up to an episode's end this
    returns what ``step`` returns; after it, the unreset state that the mask hides. A
    test compares the two."""
    obs, state, reward, terminated, info = env.step_env(key_step, state, action, params)
    truncated = env.is_truncated(state, params)
    info = {**info, "terminated": terminated, "truncated": truncated,
            "final_observation": obs}
    return obs, state, reward, terminated, truncated, info


def _window_env(env: Any, env_params: Any, keys: jax.Array, auto_reset: bool):
    """The env side of a window: per-step inputs [T, N, ...] from the env keys [T, N],
    and ``step(x_t, state, action)`` for one env. An episodic window of an env whose
    ``step`` is gymnax's own skips the auto-reset (``_step_no_reset``), with its key
    split done here for the whole window at once. Everything else calls ``step``.
    (Drawing fixed mode's reset states up front too was no faster and took 1.7x the
    memory: 34 against 20 MB per seed at 4096 envs.)"""
    if auto_reset or not _stock_step(env):
        return keys, lambda key, state, action: env.step(key, state, action, env_params)
    key_step = jax.vmap(jax.vmap(jax.random.split))(keys)[..., 0]
    return key_step, lambda key, state, action: _step_no_reset(env, key, state, action,
                                                               env_params)


def rollout(
    key: jax.Array,
    policy_fn: Callable[[jax.Array], Any],
    env: Any,
    env_params: Any,
    carry: EnvCarry,
    num_steps: int,
    discrete: bool,
    auto_reset: bool,
    group_size: int = 1,
) -> tuple[EnvCarry, Transition]:
    """Step all envs ``num_steps`` times with actions from ``policy_fn(obs) -> dist_params``.

    Args:
      key: PRNG key for actions and env transitions.
      policy_fn: maps obs [N, ...] to logits [N, A] or (mean, log_std) [N, D]; when
        ``carry.memory`` is set, ``(obs, memory) -> (dist_params, memory)``, and the
        memory of an env whose episode ends is reset to zeros.
      carry: from ``reset_envs`` (episodic) or the previous window (fixed).
      num_steps: T, static.
      discrete: whether actions are categorical.
      auto_reset: fixed-horizon mode (True) or one episode per env (False).
      group_size: consecutive envs in groups of this size share env (not action) keys.

    Returns:
      ``(carry, transitions)`` with transitions [T, N, ...].
    """
    num_envs = carry.alive.shape[0]
    # Every random number of the window, drawn before it in a few batched calls: the
    # values a step-by-step draw gives, without a Threefry loop inside every step.
    keys = jax.random.split(key, num_steps)
    split = jax.vmap(jax.random.split)(keys)
    key_action, key_env = split[:, 0], split[:, 1]
    if carry.memory is None:
        dist = jax.eval_shape(policy_fn, carry.obs)
    else:
        dist = jax.eval_shape(policy_fn, carry.obs, carry.memory)[0]
    noise = jax.vmap(lambda k: action_noise(k, dist, discrete))(key_action)
    env_in, env_step = _window_env(
        env, env_params, jax.vmap(lambda k: env_keys(k, num_envs, group_size))(key_env),
        auto_reset)
    step_fn = jax.vmap(env_step)

    def one_step(c: EnvCarry, x):
        noise_t, env_t = x
        if c.memory is None:
            dist_params, memory = policy_fn(c.obs), None
        else:
            dist_params, memory = policy_fn(c.obs, c.memory)
        action = action_from_noise(dist_params, noise_t, discrete)
        obs, state, reward, terminated, truncated, info = step_fn(env_t, c.state, action)
        # the observation reached, before an auto-reset replaced it
        next_obs = info.get("final_observation", obs) if isinstance(info, dict) else obs
        valid = jnp.ones_like(c.alive) if auto_reset else c.alive
        terminated = terminated & valid
        truncated = truncated & valid & ~terminated
        done = terminated | truncated
        reward = jnp.where(valid, reward, 0.0).astype(c.ret.dtype)
        ret = c.ret + reward
        length = c.step + 1
        transition = Transition(
            obs=c.obs, action=action, reward=reward, terminated=terminated,
            truncated=truncated, valid=valid, step=c.step, next_obs=next_obs,
            episode_return=jnp.where(done, ret, 0.0),
            episode_length=jnp.where(done, length, 0),
        )
        new = EnvCarry(
            obs=obs, state=state,
            alive=c.alive if auto_reset else c.alive & ~done,
            step=jnp.where(done, 0, length), ret=jnp.where(done, 0.0, ret),
            memory=None if memory is None else jnp.where(done[:, None], 0.0, memory),
        )
        return new, transition

    xs = (noise, env_in)
    block = None if auto_reset else block_size(num_steps)
    if block is None:
        carry, traj = jax.lax.scan(one_step, carry, xs)
    else:
        carry, traj = _scan_while_alive(one_step, carry, xs, block)
    if not auto_reset:
        # Episodes still running when the window closes are cut there: a truncation.
        cut = carry.alive
        traj = traj._replace(
            truncated=traj.truncated.at[-1].set(traj.truncated[-1] | cut),
            episode_return=traj.episode_return.at[-1].set(
                jnp.where(cut, carry.ret, traj.episode_return[-1])),
            episode_length=traj.episode_length.at[-1].set(
                jnp.where(cut, carry.step, traj.episode_length[-1])),
        )
    return carry, traj


def _scan_while_alive(one_step: Callable, carry: EnvCarry, xs: Any, block: int
                      ) -> tuple[EnvCarry, Transition]:
    """``lax.scan(one_step, carry, xs)`` for an episodic window, run ``block`` steps at
    a time and stopped once no env (of any run) is in its episode. Each step gets the
    inputs it gets in the plain scan, so every valid step is the same; the steps not
    computed are zeros."""
    num_steps = jax.tree.leaves(xs)[0].shape[0]
    out = jax.eval_shape(lambda c, x: one_step(c, x)[1], carry,
                         jax.tree.map(lambda x: x[0], xs))
    traj = jax.tree.map(lambda x: jnp.zeros((num_steps, *x.shape), x.dtype), out)

    def more(loop):
        start, c, _ = loop
        return (start < num_steps) & any_run(jnp.any(c.alive))

    def run_block(loop):
        start, c, traj = loop
        c, part = jax.lax.scan(one_step, c, jax.tree.map(
            lambda x: jax.lax.dynamic_slice_in_dim(x, start, block), xs))
        traj = jax.tree.map(lambda whole, x: jax.lax.dynamic_update_slice_in_dim(
            whole, x, start, 0), traj, part)
        return start + block, c, traj

    _, carry, traj = jax.lax.while_loop(more, run_block, (jnp.int32(0), carry, traj))
    return carry, traj
