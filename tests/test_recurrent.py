"""GRU policies: memory carried through the rollout and reset at episode starts, the
learner re-running the window the same way, and learning a task that needs memory."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reinforce_jax import TrainConfig
from reinforce_jax.rollout import rollout
from reinforce_jax.train import Trainer

MEMORY = TrainConfig(env="MemoryChain-bsuite", gru_size=8, hidden_sizes=(8,), num_envs=3,
                     num_updates=2, horizon=8)


def test_rollout_resets_the_memory_where_an_episode_ends():
    """A policy whose memory counts steps: after the window it equals each env's step
    count inside its current episode."""
    trainer = Trainer(MEMORY.replace(rollout="fixed", horizon=16))
    carry = trainer.reset(jax.random.key(0))

    def counting_policy(obs, memory):
        return jnp.zeros((obs.shape[0], 2)), memory + 1.0

    carry, traj = jax.jit(lambda c: rollout(jax.random.key(1), counting_policy, trainer.env,
                                            trainer.env_params, c, 16, True, True))(carry)
    assert bool((traj.terminated | traj.truncated).any())  # episodes of 6 steps ended
    np.testing.assert_array_equal(carry.memory, np.repeat(carry.step[:, None], 8, axis=1))


def test_the_learner_re_runs_the_window_like_a_step_by_step_loop():
    trainer = Trainer(MEMORY)
    params = trainer.init(jax.random.key(0)).params
    rng = np.random.default_rng(0)
    obs = jnp.asarray(rng.normal(size=(5, 3, 3)), jnp.float32)
    starts = jnp.asarray([[1, 1, 1], [0, 0, 1], [0, 1, 0], [1, 0, 0], [0, 0, 0]], bool)
    h0 = jnp.asarray(rng.normal(size=(3, 8)), jnp.float32)
    logits, _ = trainer.apply_sequence(params, obs, h0, starts)
    h = np.asarray(h0)
    for t in range(5):
        h = np.where(np.asarray(starts[t])[:, None], 0.0, h)
        (expected, _), h = trainer.policy.apply(params, obs[t], h)
        np.testing.assert_allclose(logits[t], expected, rtol=1e-6, atol=1e-7)


def test_recurrent_options_that_cannot_work_are_refused():
    with pytest.raises(ValueError, match="gru_size=8 with update_every='step'"):
        MEMORY.replace(update_every="step").validate()
    with pytest.raises(ValueError, match="rollout='fixed' and baseline='shared'"):
        MEMORY.replace(rollout="fixed", baseline="shared").validate()


def test_a_gru_learns_memory_chain_where_a_feedforward_policy_cannot():
    """MemoryChain shows a bit at the first step and asks for it at the sixth: +1 right,
    -1 wrong, so a policy without memory stays at 0 on average."""
    finals = {}
    for gru in (0, 32):
        cfg = TrainConfig(env="MemoryChain-bsuite", gru_size=gru, hidden_sizes=(32,),
                          num_envs=64, num_updates=150, horizon=8, learning_rate=1e-2)
        trainer = Trainer(cfg)
        run = jax.jit(jax.vmap(lambda k: trainer.run_updates(trainer.init(k),
                                                             cfg.hyperparams, 150)))
        _, metrics = run(jax.vmap(jax.random.key)(jnp.arange(4)))
        finals[gru] = np.asarray(metrics["episode_return"])[:, -10:].mean(axis=1)
    assert abs(finals[0].mean()) < 0.3, finals
    assert finals[32].mean() > 0.6 and (finals[32] > 0.9).sum() >= 2, finals


def test_torch_gru_weights_round_trip_through_our_layout():
    torch = pytest.importorskip("torch")
    from reinforce_jax.convert import flax_to_torch, torch_to_flax

    gru = torch.nn.GRU(5, 7)
    state = {f"gru.{k}": v for k, v in gru.state_dict().items()}  # as inside a module
    mapping = {"gru": "gru"}
    params = torch_to_flax(state, mapping)
    assert sorted(params["params"]["gru"]) == ["hn", "hr", "hz", "in", "ir", "iz"]
    assert params["params"]["gru"]["ir"]["kernel"].shape == (5, 7)
    back = flax_to_torch(params, mapping)
    assert sorted(back) == sorted(state)
    for name, value in state.items():
        np.testing.assert_array_equal(back[name], value.numpy())
