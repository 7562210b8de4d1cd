"""The training program: seeds are independent, a NaN seed is isolated, modes run."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reinforce_jax import HyperParams, TrainConfig, make_train
from reinforce_jax.driver import run_training, seed_keys
from reinforce_jax.rollout import Transition
from reinforce_jax.train import Trainer, compute_targets


@pytest.fixture(scope="module")
def tiny_train(tiny_config):
    return make_train(tiny_config)


def test_vmapped_seeds_equal_single_seed_runs(tiny_config, tiny_train):
    keys = seed_keys([0, 1, 2])
    batched_state, batched_metrics = jax.jit(jax.vmap(tiny_train))(keys)
    single = jax.jit(tiny_train)
    for i in range(3):
        state, metrics = single(keys[i])
        for a, b in zip(jax.tree.leaves(state.params),
                        jax.tree.leaves(jax.tree.map(lambda x: x[i], batched_state.params))):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(metrics["episode_return"],
                                   batched_metrics["episode_return"][i], rtol=1e-6)


def test_a_nan_seed_leaves_the_others_untouched(tiny_config, tiny_train):
    keys = seed_keys([0, 1, 2])
    base = tiny_config.hyperparams
    lrs = jnp.array([base.learning_rate, jnp.nan, base.learning_rate], jnp.float32)
    hp = base._replace(learning_rate=lrs)
    axes = HyperParams(0, None, None, None, None)
    run = jax.jit(jax.vmap(tiny_train, in_axes=(0, axes)))
    state, metrics = run(keys, hp)
    leaves = [np.asarray(x) for x in jax.tree.leaves(state.params)]
    assert all(np.isnan(x[1]).all() for x in leaves)
    clean_state, _ = jax.jit(jax.vmap(tiny_train))(keys)
    for x, y in zip(leaves, jax.tree.leaves(clean_state.params)):
        np.testing.assert_allclose(x[[0, 2]], np.asarray(y)[[0, 2]], rtol=1e-6, atol=1e-7)


def test_driver_reports_the_diverged_seed_and_keeps_the_rest(tiny_config):
    base = tiny_config.hyperparams
    hp = base._replace(learning_rate=np.array([base.learning_rate, np.nan], np.float32))
    result = run_training(tiny_config, num_seeds=2, progress=False, hparams=hp)
    # update 0's loss is computed from finite params; its NaN step poisons update 1
    assert result.diverged_at.tolist() == [-1, 1]
    assert any("seed 1 diverged" in m for m in result.messages)
    assert np.isfinite(result.metrics["loss"][0]).all()


def test_metrics_shapes_and_episode_bookkeeping(tiny_config, tiny_train):
    _, m = jax.jit(tiny_train)(jax.random.key(3))
    assert m["loss"].shape == (tiny_config.num_updates,)
    # episodic: every env finishes (or is cut at the horizon) exactly once per update
    np.testing.assert_array_equal(m["episodes"], tiny_config.num_envs)
    np.testing.assert_allclose(m["episode_length"] * m["episodes"], m["env_steps"])
    # CartPole pays 1 per step, so return equals length
    np.testing.assert_allclose(m["episode_return"], m["episode_length"])
    assert np.all(m["episode_length"] <= tiny_config.horizon)


@pytest.mark.parametrize("overrides", [
    dict(rollout="fixed", baseline="shared"),
    dict(rollout="fixed", baseline="none"),
    dict(env="Pendulum-v1", baseline="separate", log_std="free", normalize_returns="episode"),
    dict(env="MountainCarContinuous-v0", return_mode="episode", gamma_t_weighting=True,
         reduction="sum", ent_coef=0.01),
])
def test_other_modes_train_to_finite_numbers(tiny_config, overrides):
    cfg = tiny_config.replace(num_updates=2, **overrides)
    state, m = jax.jit(make_train(cfg))(jax.random.key(0))
    assert all(np.isfinite(np.asarray(v)).all() for v in m.values())
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state.params))


def _traj(reward, terminated, truncated, valid=None):
    T, N = np.shape(reward)
    z = jnp.zeros((T, N))
    valid = jnp.ones((T, N), bool) if valid is None else jnp.asarray(valid, bool)
    return Transition(obs=z, action=z, reward=jnp.asarray(reward, jnp.float32),
                      terminated=jnp.asarray(terminated, bool),
                      truncated=jnp.asarray(truncated, bool), valid=valid,
                      step=jnp.zeros((T, N), jnp.int32), next_obs=z, episode_return=z,
                      episode_length=z.astype(jnp.int32))


def test_fixed_mode_bootstraps_truncation_but_not_termination():
    cfg = TrainConfig(rollout="fixed", baseline="shared", normalize_returns="none")
    traj = _traj([[1.0], [1.0], [1.0]], [[0], [0], [0]], [[0], [1], [0]])
    next_values = jnp.array([[0.0], [5.0], [0.0]])
    G, mask, _ = compute_targets(cfg, traj, 0.5, next_values, jnp.array([8.0]))
    # t=1 truncated: 1 + 0.5*5 = 3.5; t=0: 1 + 0.5*3.5 = 2.75; t=2: 1 + 0.5*8 = 5
    np.testing.assert_allclose(G[:, 0], [2.75, 3.5, 5.0])
    assert mask.all()
    traj = _traj([[1.0], [1.0], [1.0]], [[0], [1], [0]], [[0], [0], [0]])
    G, _, _ = compute_targets(cfg, traj, 0.5, next_values, jnp.array([8.0]))
    np.testing.assert_allclose(G[:, 0], [1.5, 1.0, 5.0])  # terminal: no value after it


def test_fixed_mode_without_baseline_drops_unfinished_tail():
    cfg = TrainConfig(rollout="fixed", normalize_returns="none")
    traj = _traj([[1.0], [1.0], [1.0]], [[0], [1], [0]], [[0], [0], [0]])
    _, mask, _ = compute_targets(cfg, traj, 0.9, None, None)
    np.testing.assert_array_equal(mask[:, 0], [True, True, False])


def test_trainer_reuses_one_program_for_new_hyperparameters(tiny_config):
    trainer = Trainer(tiny_config)
    fn = jax.jit(jax.vmap(trainer.run_updates, in_axes=(0, None, None)), static_argnums=2)
    state = jax.vmap(trainer.init)(seed_keys([0, 1]))
    hp = HyperParams(*(jnp.float32(v) for v in tiny_config.hyperparams))
    fn(state, hp, 1)
    fn(state, hp._replace(learning_rate=jnp.float32(0.5), gamma=jnp.float32(0.5)), 1)
    assert fn._cache_size() == 1


def test_interrupt_keeps_finished_chunks_and_the_cli_writes_them(tiny_config, monkeypatch,
                                                                 tmp_path):
    import json

    from reinforce_jax import driver
    from reinforce_jax.cli import write_run

    real_get, calls = jax.device_get, {"n": 0}

    def interrupt_second_chunk(x):
        calls["n"] += 1
        if calls["n"] == 2:  # Ctrl-C while waiting for the second chunk's metrics
            raise KeyboardInterrupt
        return real_get(x)

    monkeypatch.setattr(driver.jax, "device_get", interrupt_second_chunk)
    cfg = tiny_config.replace(num_updates=4)
    result = run_training(cfg, num_seeds=2, chunk_updates=2, progress=False)
    monkeypatch.setattr(driver.jax, "device_get", real_get)
    assert result.interrupted and result.updates_done == 2
    summary = write_run(tmp_path, result)
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["interrupted"] is True and saved["updates_done"] == 2
    assert len(summary["final_return"]) == 2


def test_faithful_per_step_updates_skip_masked_steps():
    import optax

    from reinforce_jax.faithful import per_step_updates
    from reinforce_jax.policies import DiscretePolicy

    policy = DiscretePolicy(2, (), "tanh")
    params = policy.init(jax.random.key(0), jnp.zeros((1, 4)))
    tx = optax.adam(1e-2)
    obs = jax.random.normal(jax.random.key(1), (6, 4))
    actions = jnp.array([0, 1, 1, 0, 1, 0])
    G = jnp.arange(6.0, 0.0, -1.0)
    fn = lambda p, o: policy.apply(p, o)[0]  # noqa: E731
    short, _ = per_step_updates(fn, tx, params, tx.init(params), obs[:3], actions[:3], G[:3])
    padded, _ = per_step_updates(fn, tx, params, tx.init(params), obs, actions, G,
                                 mask=jnp.arange(6) < 3)
    full, _ = per_step_updates(fn, tx, params, tx.init(params), obs, actions, G)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), short, padded)
    assert not np.allclose(full["params"]["logits"]["kernel"], short["params"]["logits"]["kernel"])


def test_leave_one_out_mean_by_hand():
    from reinforce_jax.returns import leave_one_out_mean

    x = jnp.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])
    # groups of 3: (1, 2, 3) and (4, 5, 6); each gets the mean of the other two
    np.testing.assert_allclose(leave_one_out_mean(x, jnp.ones_like(x, bool), 3),
                               [[2.5, 2.0, 1.5, 5.5, 5.0, 4.5]])
    # an invalid member is left out of the others' means and gets 0 itself;
    # a member with no valid partner gets 0
    mask = jnp.array([[True, False, True, True, False, False]])
    np.testing.assert_allclose(leave_one_out_mean(x, mask, 3), [[3.0, 0.0, 1.0, 0.0, 0.0, 0.0]])


def test_groups_share_env_randomness_and_nothing_else():
    from reinforce_jax.envs import make_env
    from reinforce_jax.rollout import reset_envs, rollout

    env, params, _ = make_env("CartPole-v1")
    carry = reset_envs(jax.random.key(0), env, params, 6, group_size=3)
    obs = np.asarray(carry.obs)
    np.testing.assert_array_equal(obs[0], obs[2])
    np.testing.assert_array_equal(obs[3], obs[5])
    assert not np.array_equal(obs[0], obs[3])
    ones = reset_envs(jax.random.key(0), env, params, 6)
    np.testing.assert_array_equal(ones.obs, reset_envs(jax.random.key(0), env, params, 6,
                                                       group_size=1).obs)
    _, traj = rollout(jax.random.key(1), lambda o: jnp.zeros((o.shape[0], 2)), env, params,
                      carry, 5, True, False, 3)
    actions = np.asarray(traj.action)
    assert not all(np.array_equal(actions[:, 0], actions[:, k]) for k in (1, 2))


def test_group_baseline_advantages_sum_to_zero_per_group():
    cfg = TrainConfig(env="DigitMatch-10-onehot", num_envs=8, group_size=4, baseline="group",
                      normalize_returns="none")
    traj = _traj([[-3.0, -1.0, 0.0, -4.0, -2.0, -2.0, -5.0, -1.0]], np.ones((1, 8)),
                 np.zeros((1, 8)))
    A, _, _ = compute_targets(cfg, traj, 1.0, None, None)
    np.testing.assert_allclose(A[0, 0], -3.0 - (-5.0 / 3))
    np.testing.assert_allclose(A.reshape(2, 4).sum(-1), 0.0, atol=1e-6)


@pytest.mark.parametrize("overrides", [
    dict(),  # episodic: invalid steps after each episode's end
    dict(rollout="fixed", baseline="shared", reduction="sum", ent_coef=0.1),
])
def test_chunked_gradient_equals_whole_batch_gradient(tiny_config, overrides):
    whole = Trainer(tiny_config.replace(grad_chunk_rows=0, **overrides))
    chunked = Trainer(tiny_config.replace(grad_chunk_rows=4 * 5, **overrides))  # 5 steps, pad 1
    state = whole.init(jax.random.key(0))
    hp = whole.config.hyperparams
    # a few updates first, so the policy is not uniform and episodes end unevenly
    state, _ = jax.jit(whole.run_updates, static_argnums=2)(state, hp, 2)
    a_state, a_m = jax.jit(whole.update)(state, hp)
    b_state, b_m = jax.jit(chunked.update)(state, hp)
    for a, b in zip(jax.tree.leaves(a_state.params), jax.tree.leaves(b_state.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for name in ("loss", "pg_loss", "value_loss", "entropy", "grad_norm"):
        np.testing.assert_allclose(a_m[name], b_m[name], rtol=1e-5, atol=1e-6)


def test_vmapped_runs_slice_and_stop_together_with_the_same_gradient(tiny_config):
    """Under the driver's ``vmap(..., axis_name=RUN_AXIS)`` the learner's time slices hold
    about ``grad_chunk_rows`` rows of all runs together, a slice with no valid row in any
    run is skipped, and an episodic window stops once every run's episodes have ended.
    Each run's update must still equal its own whole-batch update, up to round-off."""
    from reinforce_jax.rollout import RUN_AXIS

    cfg = tiny_config.replace(horizon=200)  # 4 envs; episodes end long before step 200
    whole = Trainer(cfg.replace(grad_chunk_rows=0))
    chunked = Trainer(cfg.replace(grad_chunk_rows=3 * 4 * 5))  # 3 runs: 5 steps a slice
    keys = seed_keys([0, 1, 2])
    hp = whole.config.hyperparams
    state = jax.vmap(whole.init)(keys)
    state, _ = jax.jit(jax.vmap(lambda s: whole.run_updates(s, hp, 2)))(state)
    a_state, a_m = jax.jit(jax.vmap(lambda s: whole.update(s, hp)))(state)
    b_state, b_m = jax.jit(jax.vmap(lambda s: chunked.update(s, hp), axis_name=RUN_AXIS))(
        state)
    for a, b in zip(jax.tree.leaves(a_state.params), jax.tree.leaves(b_state.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for name in ("episode_return", "env_steps", "loss", "entropy", "grad_norm"):
        np.testing.assert_allclose(a_m[name], b_m[name], rtol=1e-5, atol=1e-6)
    # the window stopped early, in blocks of 25 steps (200 = 8 x 25), at one step for all
    computed = np.asarray(b_m["computed_steps"]) // 4
    assert computed[0] == computed[1] == computed[2] < 200 and computed[0] % 25 == 0, computed
    assert (np.asarray(b_m["env_steps"]) <= computed * 4).all()


def test_sgd_takes_a_plain_gradient_step(tiny_config):
    cfg = tiny_config.replace(optimizer="sgd", anneal_lr=False, max_grad_norm=float("inf"),
                              learning_rate=0.1)
    trainer = Trainer(cfg)
    state = trainer.init(jax.random.key(0))
    captured = {}
    real = trainer.loss_and_grad

    def spy(*args):
        out = real(*args)
        captured["grads"] = out[1]
        return out

    trainer.loss_and_grad = spy
    new, _ = trainer.update(state, cfg.hyperparams)
    for p, g, q in zip(jax.tree.leaves(state.params), jax.tree.leaves(captured["grads"]),
                       jax.tree.leaves(new.params)):
        np.testing.assert_allclose(q, p - 0.1 * g, rtol=1e-6, atol=1e-7)
