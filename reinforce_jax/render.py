"""Watch a kept policy: play one episode and draw it to a GIF with gymnax's visualizer.

``gymnax.visualize.Visualizer`` draws the envs it knows (``VISUALIZED_ENVS``) with
matplotlib and saves a GIF through Pillow, one frame per step. Its classic-control
frames come from gymnasium's renderer, which needs pygame: the ``render`` extra
(``pip install "reinforce_jax[render]"``) brings it.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from reinforce_jax.policy import Policy, sample

# the env names gymnax 1.0.1's Visualizer draws (gymnax/visualize/visualizer.py)
CLASSIC_CONTROL = ("Acrobot-v1", "CartPole-v1", "Pendulum-v1", "MountainCar-v0",
                   "MountainCarContinuous-v0")
VISUALIZED_ENVS = CLASSIC_CONTROL + (
    "Catch-bsuite", "Asterix-MinAtar", "Breakout-MinAtar", "Freeway-MinAtar",
    "Seaquest-MinAtar", "SpaceInvaders-MinAtar", "Pong-misc", "PointRobot-misc",
    "MetaMaze-misc", "FourRooms-misc")


def check_renderable(policy: Policy) -> None:
    """Refuse, in one line, an env gymnax cannot draw or a missing renderer."""
    name = getattr(policy.env, "name", policy.config.env)
    if name not in VISUALIZED_ENVS:
        raise ValueError(f"env={policy.config.env!r} cannot be rendered: gymnax's visualizer "
                         f"draws only {', '.join(VISUALIZED_ENVS)}")
    if name in CLASSIC_CONTROL and importlib.util.find_spec("pygame") is None:
        raise ValueError(f"rendering {name} needs gymnasium's classic-control renderer "
                         "(pygame), which is not installed; install it with: pip install "
                         "\"reinforce_jax[render]\"")


def play_episode(policy: Policy, key: jax.Array, greedy: bool = False,
                 max_steps: int | None = None):
    """One episode from reset, stepped as training does (the env's public ``step``; it
    ends at a terminal state or the env's time limit), at most ``max_steps`` steps.

    Returns ``(states, rewards, ended)``: the env state before each step (a pytree of
    ``[length, ...]`` arrays), each step's reward ``[length]``, and whether the episode
    ended (False when ``max_steps`` cut it first).
    """
    env, env_params = policy.env, policy.env_params
    steps = policy.spec.max_steps if max_steps is None else min(max_steps,
                                                                 policy.spec.max_steps)

    @jax.jit
    def play(key):
        key_reset, key_play = jax.random.split(key)
        obs, state = env.reset(key_reset, env_params)

        def step(carry, key_t):
            obs, state, memory, alive = carry
            key_action, key_env = jax.random.split(key_t)
            dist, memory = policy.dist(obs, greedy, memory=memory)
            action = sample(key_action, dist, policy.discrete)
            obs, new_state, reward, terminated, truncated, _ = env.step(key_env, state, action,
                                                                        env_params)
            done = terminated | truncated  # what follows (an auto-reset) is not shown
            return (obs, new_state, memory, alive & ~done), (state, reward, alive)

        start = (obs, state, policy.initial_memory(), jnp.bool_(True))
        (*_, running), out = jax.lax.scan(step, start, jax.random.split(key_play, steps))
        return out, ~running

    (states, rewards, alive), ended = jax.device_get(play(key))
    length = int(np.sum(alive))  # steps taken until the episode ended
    return (jax.tree.map(lambda x: x[:length], states), np.asarray(rewards[:length]),
            bool(ended))


def render_gif(policy: Policy, out: Path, key: jax.Array, greedy: bool = False,
               max_frames: int | None = None) -> dict:
    """Play one episode (``play_episode``) and write it to ``out`` as a GIF, one frame per
    step (at most ``max_frames``). Returns ``{"frames", "return", "how"}``, ``how``
    saying how the episode ended."""
    check_renderable(policy)
    states, rewards, ended = play_episode(policy, key, greedy, max_frames)
    frames = len(rewards)
    from reinforce_jax.plots import pyplot

    pyplot()  # gymnax's visualizer draws with pyplot: no display here
    # gymnasium starts pygame for every frame: no window, no sound device, no banner
    # (else SDL probes for both and prints an error per frame on a headless machine)
    for name, value in (("SDL_VIDEODRIVER", "dummy"), ("SDL_AUDIODRIVER", "dummy"),
                        ("PYGAME_HIDE_SUPPORT_PROMPT", "1")):
        os.environ.setdefault(name, value)
    from gymnax.visualize import Visualizer

    sequence = [jax.tree.map(lambda x, t=t: x[t], states) for t in range(frames)]
    Visualizer(policy.env, policy.env_params, sequence, np.cumsum(rewards)).animate(str(out))
    if not ended:
        how = "cut at max_frames"
    elif frames == policy.spec.max_steps:
        how = "the episode reached the env's time limit"
    else:
        how = "the episode ended"
    return {"frames": frames, "return": float(rewards.sum()), "how": how}
