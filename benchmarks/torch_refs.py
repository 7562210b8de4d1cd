"""PyTorch learners timed against ours: the per-step CartPole agent's loop, the LineWalk
agents' per-episode learner (on CartPole), and a batched learner over a gymnasium vector
env (the fastest torch REINFORCE we would expect a user to write). Each returns env steps
per second."""

from __future__ import annotations

import os
import time

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical


def _mlp(hidden: int) -> nn.Module:
    return nn.Sequential(nn.Linear(4, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                         nn.Linear(hidden, 2))


def per_step_loop(seconds: float, gamma: float = 0.99) -> float:
    """Linear softmax, one Adam step per time step after each episode (Sutton & Barto)."""
    env = gym.make("CartPole-v1")
    policy = nn.Linear(4, 2)
    opt = torch.optim.Adam(policy.parameters(), lr=1e-3)
    steps, start, episode = 0, time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        state, _ = env.reset(seed=episode)
        states, actions, rewards, done = [], [], [], False
        while not done:
            with torch.no_grad():
                probs = torch.softmax(policy(torch.as_tensor(state, dtype=torch.float32)), -1)
            action = int(Categorical(probs).sample())
            next_state, reward, term, trunc, _ = env.step(action)
            states.append(state), actions.append(action), rewards.append(reward)
            state, done = next_state, term or trunc
        for t in range(len(states)):
            G = sum(r * gamma**i for i, r in enumerate(rewards[t:]))
            opt.zero_grad()
            probs = torch.softmax(policy(torch.as_tensor(states[t], dtype=torch.float32)), -1)
            (-Categorical(probs).log_prob(torch.tensor(actions[t])) * G).backward()
            opt.step()
        steps += len(states)
        episode += 1
    return steps / (time.perf_counter() - start)


def per_episode_agent(seconds: float, gamma: float = 0.99) -> float:
    """2x128 tanh policy, one update per episode on normalized returns, clip 0.5."""
    env = gym.make("CartPole-v1")
    policy = _mlp(128)
    opt = torch.optim.Adam(policy.parameters(), lr=3e-4)
    steps, start, episode = 0, time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        state, _ = env.reset(seed=episode)
        log_probs, rewards, done = [], [], False
        while not done:
            dist = Categorical(logits=policy(torch.as_tensor(state, dtype=torch.float32)))
            action = dist.sample()
            log_probs.append(dist.log_prob(action))
            state, reward, term, trunc, _ = env.step(int(action))
            rewards.append(reward)
            done = term or trunc
        G, returns = 0.0, []
        for r in reversed(rewards):
            G = r + gamma * G
            returns.insert(0, G)
        R = torch.tensor(returns)
        if len(R) > 1:
            R = (R - R.mean()) / (R.std() + 1e-8)
        loss = -(torch.stack(log_probs) * R).mean()
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(policy.parameters(), 0.5)
        opt.step()
        steps += len(rewards)
        episode += 1
    return steps / (time.perf_counter() - start)


def batched_vector(seconds: float, num_envs: int = 1024, horizon: int = 64,
                   gamma: float = 0.99) -> float:
    """2x64 tanh policy over a numpy-vectorized gymnasium CartPole: a [T, N] batch per
    update, reward-to-go with dones, batch-normalized, one Adam step. Tails are kept
    (no masking): this is the cheapest version a torch user would write."""
    env = gym.make_vec("CartPole-v1", num_envs=num_envs, vectorization_mode="vector_entry_point")
    policy = _mlp(64)
    opt = torch.optim.Adam(policy.parameters(), lr=3e-3)
    obs, _ = env.reset(seed=0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        all_obs, actions, rewards, dones = [], [], [], []
        with torch.no_grad():
            for _ in range(horizon):
                o = torch.as_tensor(obs, dtype=torch.float32)
                a = Categorical(logits=policy(o)).sample()
                obs, r, term, trunc, _ = env.step(a.numpy())
                all_obs.append(o), actions.append(a)
                rewards.append(torch.as_tensor(r, dtype=torch.float32))
                dones.append(torch.as_tensor(term | trunc, dtype=torch.float32))
        G = torch.zeros(num_envs)
        returns = []
        for t in reversed(range(horizon)):
            G = rewards[t] + gamma * (1 - dones[t]) * G
            returns.append(G)
        R = torch.stack(returns[::-1])
        R = (R - R.mean()) / (R.std() + 1e-8)
        logits = policy(torch.stack(all_obs))
        lp = Categorical(logits=logits).log_prob(torch.stack(actions))
        loss = -(lp * R).mean()
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(policy.parameters(), 0.5)
        opt.step()
        steps += horizon * num_envs
    return steps / (time.perf_counter() - start)


def run_all(seconds: float) -> dict[str, float]:
    """Each reference at 1 thread (far faster for the per-step loops); the batched learner
    also at every core, since a batched user would not pin it to one."""
    np.random.seed(0)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    rates = {"torch per-step CartPole loop (1 thread)": per_step_loop(seconds),
             "torch per-episode 2x128 agent (1 thread)": per_episode_agent(seconds),
             "torch batched vector env (1024 envs, 1 thread)": batched_vector(seconds)}
    cores = os.cpu_count() or 1
    if cores > 1:
        torch.set_num_threads(cores)
        rates[f"torch batched vector env (1024 envs, {cores} threads)"] = batched_vector(seconds)
        torch.set_num_threads(1)
    return rates
