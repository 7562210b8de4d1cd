"""Vectorized rollouts: ``num_envs`` gymnax environments stepped together under ``lax.scan``.

Two episode-boundary modes (see README, "Episode boundaries"):

* episodic (``auto_reset=False``): every env starts from reset and plays one episode;
  steps after its end are marked invalid. If the window ends first, the last step is
  marked truncated. This is the exact Monte-Carlo estimator.
* fixed horizon (``auto_reset=True``): envs auto-reset and the carry persists across
  updates; an episode may straddle windows.

Both step the env through its public ``step``, so a gymnax wrapper (or any override of
``step``) takes effect. The one shortcut: in episodic mode, an env whose ``step`` is
gymnax's own is stepped without the auto-reset that the mask would discard anyway.

``terminated`` (a terminal state, value 0) and ``truncated`` (a time limit, the state
still has value) are kept apart throughout.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from gymnax.environments.environment import Environment

from reinforce_jax import distributions as D


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
    if discrete:
        return D.sample_categorical(key, dist_params)
    mean, log_std = dist_params
    return D.sample_normal(key, mean, log_std)


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


def _step_no_reset(env: Any) -> Callable:
    """gymnax's ``Environment.step`` without its auto-reset. Episodic mode masks every step
    after an episode's end, so the reset gymnax computes at every step (a fresh random
    state, then a select over the whole state) is thrown away; skipping it saves about a
    sixth of an episodic CartPole update. Up to the end of each episode it returns what
    ``step`` returns (the same key split, ``step_env``, ``is_truncated``, the same info
    keys); after it, the unreset state that the mask hides. A test compares the two."""
    def step(key, state, action, params):
        key_step, _ = jax.random.split(key)
        obs, state, reward, terminated, info = env.step_env(key_step, state, action, params)
        truncated = env.is_truncated(state, params)
        info = {**info, "terminated": terminated, "truncated": truncated,
                "final_observation": obs}
        return obs, state, reward, terminated, truncated, info
    return step


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
    step_fn = jax.vmap(env.step if auto_reset or not _stock_step(env) else _step_no_reset(env),
                       in_axes=(0, 0, 0, None))

    def one_step(c: EnvCarry, key_t: jax.Array):
        key_action, key_env = jax.random.split(key_t)
        if c.memory is None:
            dist_params, memory = policy_fn(c.obs), None
        else:
            dist_params, memory = policy_fn(c.obs, c.memory)
        action = sample_action(key_action, dist_params, discrete)
        keys_env = env_keys(key_env, num_envs, group_size)
        obs, state, reward, terminated, truncated, info = step_fn(keys_env, c.state, action,
                                                                  env_params)
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

    carry, traj = jax.lax.scan(one_step, carry, jax.random.split(key, num_steps))
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
