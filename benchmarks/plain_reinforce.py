"""A plain, PureJaxRL-style REINFORCE on gymnax CartPole-v1: the JAX peer that
``benchmarks/shapes.py`` measures ``reinforce_jax`` against.

It is written the way a typical user would write it after reading PureJaxRL, with no
tricks: a 2x64 tanh MLP, Gumbel sampling, ``vmap(env.step)`` with gymnax's auto-reset,
reward-to-go by a reverse ``lax.scan``, and one clipped Adam step per update on the
gradient of the whole [T, N] batch at once. Two rollout modes, as in ``reinforce_jax``:

- ``episodic``: every update resets all envs and plays ``max_steps_in_episode`` steps;
  steps after an env's episode ended are invalid (reward 0, masked out of the loss).
- ``fixed``: windows of ``horizon`` steps, the envs carried across updates; steps whose
  episode has not ended by the window's end are masked out (no value function to
  bootstrap their unknown return).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import flax.linen as nn
import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import optax

ENV_NAME = "CartPole-v1"
HORIZON = 64
LEARNING_RATE = 5e-3
GAMMA = 0.99
MAX_GRAD_NORM = 0.5


class MLP(nn.Module):
    """Categorical policy: tanh hidden layers, orthogonal init, zero biases, logits out."""

    action_dim: int
    hidden_sizes: Sequence[int] = (64, 64)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for width in self.hidden_sizes:
            x = nn.tanh(nn.Dense(width, kernel_init=nn.initializers.orthogonal(np.sqrt(2)),
                                 bias_init=nn.initializers.zeros)(x))
        return nn.Dense(self.action_dim, kernel_init=nn.initializers.orthogonal(0.01),
                        bias_init=nn.initializers.zeros)(x)


class State(NamedTuple):
    """What one seed carries from update to update."""

    params: Any
    opt_state: Any
    env_state: Any  # [N] envs; carried in fixed mode, replaced every update in episodic
    obs: jax.Array  # [N, obs_dim]
    running_return: jax.Array  # [N]: reward so far in each env's current episode
    key: jax.Array


class Transition(NamedTuple):
    """One step of all envs, stacked to [T, N] by the rollout."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array  # 0 where invalid
    done: jax.Array  # the episode ended at this step (only where valid)
    valid: jax.Array  # the step belongs to an episode (False after it ended, episodic)
    finished_return: jax.Array  # the episode's return where done, else 0


def reward_to_go(reward: jax.Array, done: jax.Array, gamma: float
                 ) -> tuple[jax.Array, jax.Array]:
    """Discounted return from each step to its episode's end, and whether that end lies
    inside the window (the return is only known then); reverse ``lax.scan`` over [T, N]."""
    def back(carry, step):
        future, ends_later = carry
        r, d = step
        G = r + gamma * future * (1.0 - d)
        finished = d | ends_later
        return (G, finished), (G, finished)

    zero = (jnp.zeros_like(reward[0]), jnp.zeros_like(done[0]))
    _, (G, finished) = jax.lax.scan(back, zero, (reward, done), reverse=True)
    return G, finished


def make_update(num_envs: int, mode: str, horizon: int = HORIZON,
                lr: float = LEARNING_RATE, gamma: float = GAMMA) -> tuple[Callable, Callable]:
    """``(init(key) -> State, update(State) -> (State, metrics))`` for one seed.

    Metrics per update: ``computed_steps`` (T*N env steps played), ``valid_steps`` (those
    inside an episode), ``episode_return`` (mean return of the episodes that ended in
    this update, NaN if none) and ``loss``.
    """
    if mode not in ("episodic", "fixed"):
        raise ValueError(f"mode={mode!r}; allowed: 'episodic' or 'fixed'")
    env, env_params = gymnax.make(ENV_NAME)
    num_steps = env_params.max_steps_in_episode if mode == "episodic" else horizon
    network = MLP(env.action_space(env_params).n)
    tx = optax.chain(optax.clip_by_global_norm(MAX_GRAD_NORM), optax.adam(lr))
    reset = jax.vmap(env.reset, in_axes=(0, None))
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def reset_envs(key: jax.Array):
        """Every env reset, with no reward collected yet."""
        obs, env_state = reset(jax.random.split(key, num_envs), env_params)
        return env_state, obs, jnp.zeros(num_envs)

    def init(key: jax.Array) -> State:
        """Fresh parameters, optimizer and envs for one seed."""
        key, key_params, key_env = jax.random.split(key, 3)
        env_state, obs, running = reset_envs(key_env)
        params = network.init(key_params, obs)
        return State(params, tx.init(params), env_state, obs, running, key)

    def env_step(params, carry, key):
        """All envs take one sampled action. Once an env's episode has ended (episodic
        mode) its later steps are invalid: reward 0, never done, ``alive`` stays False."""
        env_state, obs, running, alive = carry
        key_act, key_step = jax.random.split(key)
        action = jax.random.categorical(key_act, network.apply(params, obs))
        next_obs, env_state, reward, terminated, truncated, _ = step(
            jax.random.split(key_step, num_envs), env_state, action, env_params)
        reward = jnp.where(alive, reward, 0.0)
        done = (terminated | truncated) & alive
        running = running + reward
        transition = Transition(obs, action, reward, done, alive, jnp.where(done, running, 0.0))
        if mode == "episodic":
            alive = alive & ~done
        return (env_state, next_obs, jnp.where(done, 0.0, running), alive), transition

    def loss_fn(params, traj: Transition, G: jax.Array, mask: jax.Array) -> jax.Array:
        """Minus the mean of log pi(a|s) * G over the masked-in steps of the batch."""
        log_probs = jax.nn.log_softmax(network.apply(params, traj.obs))
        log_prob = jnp.take_along_axis(log_probs, traj.action[..., None], axis=-1)[..., 0]
        return -(log_prob * G * mask).sum() / jnp.maximum(mask.sum(), 1)

    def update(state: State) -> tuple[State, dict]:
        """Play one window, then one clipped Adam step on the whole [T, N] batch."""
        key, key_reset, key_rollout = jax.random.split(state.key, 3)
        start = (state.env_state, state.obs, state.running_return)
        if mode == "episodic":
            start = reset_envs(key_reset)
        carry = (*start, jnp.ones(num_envs, bool))
        (env_state, obs, running, _), traj = jax.lax.scan(
            lambda c, k: env_step(state.params, c, k), carry,
            jax.random.split(key_rollout, num_steps))
        G, finished = reward_to_go(traj.reward, traj.done, gamma)
        mask = traj.valid & finished
        loss, grads = jax.value_and_grad(loss_fn)(state.params, traj, G, mask)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        episodes = traj.done.sum()
        metrics = {
            "computed_steps": jnp.int32(num_steps * num_envs),
            "valid_steps": traj.valid.sum(),
            "episode_return": jnp.where(episodes > 0, traj.finished_return.sum()
                                        / jnp.maximum(episodes, 1), jnp.nan),
            "loss": loss,
        }
        return State(params, opt_state, env_state, obs, running, key), metrics

    return init, update


def make_train(num_envs: int, mode: str, horizon: int = HORIZON,
               lr: float = LEARNING_RATE, gamma: float = GAMMA) -> Callable:
    """``train(key, num_updates) -> (State, metrics [num_updates])``, pure; vmap it over
    keys with ``num_updates`` a Python int (it sets the scan's length)."""
    init, update = make_update(num_envs, mode, horizon, lr, gamma)

    def train(key: jax.Array, num_updates: int):
        return jax.lax.scan(lambda s, _: update(s), init(key), None, length=num_updates)

    return train
