"""The parity cases: each pairs a torch reference with the same computation through our
public JAX API, on identical random inputs and identical (copied) weights.

A case is checked twice per dtype: the gradient of one loss (after torch's in-place
``clip_grad_norm_`` where the original code clips), and the parameters after 50 optimizer
steps on the same 50 batches (for the per-step CartPole agent: one episode of 50 steps,
one step per time step).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch

from parity import torch_reference as ref
from reinforce_jax import distributions as D
from reinforce_jax import returns as R
from reinforce_jax.convert import torch_to_flax
from reinforce_jax.faithful import per_step_updates
from reinforce_jax.losses import reinforce_loss, reinforce_objective
from reinforce_jax.optim import clip_by_global_norm_torch, make_optimizer, set_learning_rate
from reinforce_jax.config import TrainConfig
from reinforce_jax.policies import DiscretePolicy, GaussianPolicy
from reinforce_jax.train import Trainer

TOLERANCES = {
    "float64": {"grad_rtol": 1e-10, "grad_atol": 1e-12, "steps_atol": 1e-9},
    "float32": {"grad_rtol": 1e-5, "grad_atol": 1e-6, "steps_atol": 1e-4},
}
STEPS = 50
GAMMA = 0.99


@dataclass
class Setup:
    """One case, built for one dtype and seed."""

    torch_model: torch.nn.Module
    flax_model: Any
    mapping: dict
    torch_loss: Callable[[torch.nn.Module, dict], torch.Tensor]
    jax_loss: Callable[[Any, dict], jax.Array]
    make_batch: Callable[[np.random.Generator, torch.nn.Module], dict]
    lr: float
    clip: float | None = None
    per_step: bool = False  # per-step CartPole agent: one episode of per-step updates
    # the optimizer-steps row done by the case itself: (rng, torch model, our params) ->
    # our params after the same updates the case applied to the torch model
    run_steps: Callable[[np.random.Generator, torch.nn.Module, Any], Any] | None = None


@dataclass
class Row:
    case: str
    dtype: str
    check: str  # "grad" or "50 steps"
    max_abs: float
    max_rel: float
    tolerance: str
    passed: bool
    moved: float = float("nan")  # 50-step rows: largest parameter change (0 = vacuous check)


def _np(dtype):
    return np.float64 if dtype == "float64" else np.float32


def _episode(rng, T, obs_dim, n_actions, dtype):
    return {"obs": rng.normal(size=(T, obs_dim)).astype(_np(dtype)),
            "actions": rng.integers(0, n_actions, size=T),
            "rewards": rng.normal(size=T).astype(_np(dtype))}


def _t(x):
    return torch.from_numpy(np.asarray(x))


# ---------------------------------------------------------------- case builders
def categorical(dtype, variant=None, reduction="mean"):
    model = ref.DiscreteMLP(4, 3)
    flax_model = DiscretePolicy(3, (128, 128), "tanh")

    def torch_loss(m, b):
        return ref.linewalk_loss(m(_t(b["obs"])).log_prob(_t(b["actions"])), _t(b["rewards"]),
                                 GAMMA, reduction)

    def jax_loss(p, b):
        logits, _ = flax_model.apply(p, b["obs"])
        lp = D.categorical_log_prob(logits, b["actions"])
        G = R.discounted_returns(b["rewards"], jnp.zeros(len(b["rewards"])), GAMMA)
        if variant == "ddof0":  # the trap: numpy/jax default std is biased
            G = (G - G.mean()) / (jnp.std(G) + 1e-8)
        else:
            G = R.normalize(G)
        return reinforce_loss(lp, G, reduction=reduction)

    return Setup(model, flax_model, model.MAPPING, torch_loss, jax_loss,
                 lambda rng, m: _episode(rng, 24, 4, 3, dtype), lr=3e-4, clip=0.5)


def gaussian(dtype, variant=None):
    model = ref.GaussianMLP(3, 3)
    with torch.no_grad():  # push two log-std outputs past the clamp [-20, 2]
        model.log_std_head.bias.copy_(torch.tensor([3.0, -21.0, 0.0]))
    flax_model = GaussianPolicy(3, (128, 128), "tanh", log_std_mode="state")

    def make_batch(rng, m):
        b = _episode(rng, 24, 3, 1, dtype)
        b["actions"] = rng.normal(size=(24, 3)).astype(_np(dtype))
        return b

    def torch_loss(m, b):
        lp = m(_t(b["obs"])).log_prob(_t(b["actions"])).sum(-1)
        return ref.linewalk_loss(lp, _t(b["rewards"]), GAMMA)

    def jax_loss(p, b):
        (mean, log_std), _ = flax_model.apply(p, b["obs"])
        lp = D.normal_log_prob(mean, log_std, b["actions"])
        G = R.normalize(R.discounted_returns(b["rewards"], jnp.zeros(24), GAMMA))
        return reinforce_loss(lp, G)

    return Setup(model, flax_model, model.MAPPING, torch_loss, jax_loss, make_batch,
                 lr=3e-4, clip=0.5)


def baseline(dtype, variant=None):
    model = ref.BaselineMLP(4, 2)
    flax_model = DiscretePolicy(2, (128, 128), "tanh", value_head="shared")

    def torch_loss(m, b):
        dist, values = m(_t(b["obs"]))
        return ref.linewalk_baseline_loss(dist.log_prob(_t(b["actions"])), values,
                                          _t(b["rewards"]), GAMMA)

    def jax_loss(p, b):
        logits, values = flax_model.apply(p, b["obs"])
        lp = D.categorical_log_prob(logits, b["actions"])
        G = R.normalize(R.discounted_returns(b["rewards"], jnp.zeros(24), GAMMA))
        if variant == "no_stop_gradient":  # the bug: the baseline leaks into the policy term
            return -jnp.mean(lp * (G - values)) + 0.5 * jnp.mean((values - G) ** 2)
        return reinforce_objective(lp, G, jnp.zeros_like(lp), values=values, vf_coef=0.5)[0]

    return Setup(model, flax_model, model.MAPPING, torch_loss, jax_loss,
                 lambda rng, m: _episode(rng, 24, 4, 2, dtype), lr=3e-4, clip=0.5)


def bandit(dtype, variant=None):
    model = ref.BanditMLP()
    flax_model = GaussianPolicy(4, (128,), "sigmoid", log_std_mode="state",
                                log_std_min=-np.inf, log_std_max=np.inf)

    def make_batch(rng, m):
        x = rng.normal(size=(64, 1))
        y = np.concatenate([x, x**2, x**3, np.sin(x)], axis=1)
        with torch.no_grad():  # actions are sampled from the torch policy: data, not graph
            dist = m(_t(x.astype(_np(dtype))))
            eps = _t(rng.normal(size=(64, 4)).astype(_np(dtype)))
            samples = (dist.loc + dist.scale * eps).numpy()
        return {"x": x.astype(_np(dtype)), "y": y.astype(_np(dtype)), "samples": samples}

    def torch_loss(m, b):
        return ref.fourcurves_loss(m(_t(b["x"])), _t(b["samples"]), _t(b["y"]))

    def jax_loss(p, b):
        (mean, log_std), _ = flax_model.apply(p, b["x"])
        # per-dimension log-probs [B, 4]: each output is its own 1-D Gaussian, as in the original
        lp = D.normal_log_prob(mean[..., None], log_std[..., None], b["samples"][..., None])
        reward = -jnp.square(b["samples"] - b["y"])
        return reinforce_loss(lp, reward)

    return Setup(model, flax_model, model.MAPPING, torch_loss, jax_loss, make_batch, lr=5e-4)


def gamma_t(dtype, variant=None):
    model = ref.DiscreteMLP(4, 2, hidden=64)
    flax_model = DiscretePolicy(2, (64, 64), "tanh")

    def torch_loss(m, b):
        return ref.gamma_t_loss(m(_t(b["obs"])).log_prob(_t(b["actions"])), _t(b["rewards"]),
                                GAMMA)

    def jax_loss(p, b):
        logits, _ = flax_model.apply(p, b["obs"])
        lp = D.categorical_log_prob(logits, b["actions"])
        T = lp.shape[0]
        G = R.discounted_returns(b["rewards"], jnp.zeros(T), GAMMA)
        w = R.discount_weights(jnp.arange(T), GAMMA)
        return reinforce_objective(lp, G, jnp.zeros_like(lp), weights=w, reduction="sum")[0]

    return Setup(model, flax_model, model.MAPPING, torch_loss, jax_loss,
                 lambda rng, m: _episode(rng, 30, 4, 2, dtype), lr=1e-3)


def probs_clamped(dtype, variant=None):
    model = ref.ProbPolicy(1, 10)
    # Sharpen the initial policy so 20-30% of the probabilities start below the 1e-6 clamp.
    # Not more: a near-one-hot policy has round-off-sized gradients, which Adam scales up to
    # lr-sized steps whose sign float32 noise picks (x25 failed seed 1535925876 this way).
    with torch.no_grad():
        model.linear2.weight.mul_(6.0)
    flax_model = DiscretePolicy(10, (128,), "relu")

    def make_batch(rng, m):
        i = np.arange(50) % 10
        a = rng.integers(0, 10, size=50)
        return {"obs": i[:, None].astype(_np(dtype)), "actions": a,
                "rewards": -np.abs(i - a).astype(_np(dtype))}

    def torch_loss(m, b):
        return ref.digitmatch_loss(m(_t(b["obs"])), _t(b["actions"]), _t(b["rewards"]))

    def jax_loss(p, b):
        logits, _ = flax_model.apply(p, b["obs"])
        lp = D.clamped_probs_log_prob(logits, b["actions"], 1e-6)
        H = D.clamped_probs_entropy(logits, 1e-6)
        return reinforce_objective(lp, b["rewards"], H, ent_coef=1e-4)[0]

    return Setup(model, flax_model, model.MAPPING, torch_loss, jax_loss, make_batch, lr=1e-3)


def per_step(dtype, variant=None):
    model = ref.LinearSoftmax(4, 2)
    flax_model = DiscretePolicy(2, (), "tanh")

    def make_batch(rng, m):
        b = _episode(rng, STEPS, 4, 2, dtype)
        b["rewards"] = np.ones(STEPS, _np(dtype))  # CartPole pays 1 per step
        return b

    def torch_loss(m, b):  # the first time step's loss
        G = ref.discounted(_t(b["rewards"]), GAMMA)[0]
        return -torch.distributions.Categorical(m(_t(b["obs"][0]))).log_prob(
            _t(b["actions"][0])) * G

    def jax_loss(p, b):
        logits, _ = flax_model.apply(p, b["obs"][:1])
        G = R.discounted_returns(b["rewards"], jnp.zeros(STEPS), GAMMA)
        return reinforce_loss(D.categorical_log_prob(logits, b["actions"][:1]), G[:1],
                              reduction="sum")

    return Setup(model, flax_model, model.MAPPING, torch_loss, jax_loss, make_batch,
                 lr=1e-3, per_step=True)


def padded_batch(dtype, variant=None):
    model = ref.DiscreteMLP(4, 3)
    flax_model = DiscretePolicy(3, (128, 128), "tanh")
    T, N = 25, 6

    def make_batch(rng, m):
        lengths = rng.integers(3, T + 1, size=N)
        lengths[0] = T  # at least one episode fills the window
        mask = np.arange(T)[:, None] < lengths[None, :]
        dones = np.arange(T)[:, None] == (lengths[None, :] - 1)
        return {"obs": rng.normal(size=(T, N, 4)).astype(_np(dtype)),
                "actions": rng.integers(0, 3, size=(T, N)),
                "rewards": np.where(mask, rng.normal(size=(T, N)), 0).astype(_np(dtype)),
                "mask": mask, "dones": dones, "lengths": lengths}

    def torch_loss(m, b):  # episode by episode, as an unbatched torch agent would
        total = int(b["mask"].sum())
        loss = 0.0
        for n in range(N):
            L = int(b["lengths"][n])
            lp = m(_t(b["obs"][:L, n])).log_prob(_t(b["actions"][:L, n]))
            G = ref.normalized(ref.discounted(_t(b["rewards"][:L, n]), GAMMA))
            loss = loss + (-(lp * G)).sum() / total
        return loss

    def jax_loss(p, b):
        logits, _ = flax_model.apply(p, b["obs"])
        lp = D.categorical_log_prob(logits, b["actions"])
        G = R.discounted_returns(b["rewards"], b["dones"], GAMMA)
        G = jax.vmap(R.normalize, in_axes=1, out_axes=1)(G, b["mask"])
        return reinforce_loss(lp, G, b["mask"])

    return Setup(model, flax_model, model.MAPPING, torch_loss, jax_loss, make_batch,
                 lr=3e-4, clip=0.5)


def per_step_baseline(dtype, variant=None, optimizer="sgd"):
    """The book's REINFORCE with baseline, per time step, against our Trainer's
    ``update_every="step"`` learner: 5 episodes of different lengths, one after another."""
    model = ref.LinearPolicyAndValue(4, 2)
    lr, value_lr = (0.01, 0.05) if optimizer == "sgd" else (0.01, 0.03)
    trainer = Trainer(TrainConfig(
        env="CartPole-v1", hidden_sizes=(), baseline="separate", update_every="step",
        optimizer=optimizer, learning_rate=lr, value_learning_rate=value_lr, vf_coef=0.5,
        normalize_returns="none", gamma_t_weighting=True, max_grad_norm=float("inf"),
        anneal_lr=False, num_envs=1, gamma=GAMMA, reduction="sum"))
    lengths = (12, 7, 15, 9, 7)  # 50 steps
    T = max(lengths)

    def make_batch(rng, m, length=T):
        b = _episode(rng, length, 4, 2, dtype)
        b["rewards"] = np.ones(length, _np(dtype))  # CartPole pays 1 per step
        return b

    def torch_loss(m, b):  # the first time step: the value and the policy update's losses
        G = ref.discounted(_t(b["rewards"]), GAMMA)[0]
        v = m.value(_t(b["obs"][0])).squeeze(-1)
        delta = (G - v).detach()
        log_prob = torch.distributions.Categorical(logits=m.policy(_t(b["obs"][0])))
        return -delta * v - delta * log_prob.log_prob(_t(b["actions"][0]))

    def jax_loss(p, b):  # what the per-step learner differentiates at t = 0
        logits, values = trainer.policy.apply(p, b["obs"][:1])
        G = R.discounted_returns(b["rewards"], jnp.zeros(len(b["rewards"])), GAMMA)
        lp = D.categorical_log_prob(logits, b["actions"][:1])
        return reinforce_objective(lp, G[:1], jnp.zeros(1), values=values, vf_coef=0.5,
                                   weights=jnp.ones(1), reduction="sum")[0]

    def run_steps(rng, m, params):
        opts = [torch.optim.SGD if optimizer == "sgd" else torch.optim.Adam][0]
        opt_theta, opt_w = opts(m.policy.parameters(), lr=lr), opts(m.value.parameters(),
                                                                    lr=value_lr)
        opt_state = trainer.tx.init(params)
        learn = jax.jit(trainer.learn)
        for length in lengths:
            ep = make_batch(rng, m, length)
            ref.per_step_with_baseline_episode(m, opt_theta, opt_w, _t(ep["obs"]),
                                               _t(ep["actions"]), _t(ep["rewards"]), GAMMA)
            pad = lambda x: np.pad(x, [(0, T - length)] + [(0, 0)] * (x.ndim - 1))  # noqa
            G = R.discounted_returns(ep["rewards"], jnp.zeros(length), GAMMA)
            w = R.discount_weights(jnp.arange(length), GAMMA)
            params, opt_state = learn(
                params, opt_state, trainer.config.hyperparams, 1.0,
                pad(ep["obs"])[:, None], pad(ep["actions"])[:, None], pad(G)[:, None],
                (np.arange(T) < length)[:, None], pad(w)[:, None])[:2]
        return params

    return Setup(model, trainer.policy, model.MAPPING, torch_loss, jax_loss,
                 lambda rng, m: make_batch(rng, m), lr=lr, run_steps=run_steps)


def separate_value_adam(dtype, variant=None):
    """A policy network and a value network with two torch Adam optimizers at different
    step sizes, against our batched Trainer with ``value_learning_rate``."""
    model = ref.SeparateValueMLP(4, 2, hidden=64)
    lr, value_lr, clip = 3e-4, 1e-3, 0.5
    trainer = Trainer(TrainConfig(
        env="CartPole-v1", hidden_sizes=(64, 64), baseline="separate", optimizer="adam",
        learning_rate=lr, value_learning_rate=value_lr, vf_coef=0.5, max_grad_norm=clip,
        anneal_lr=False, gamma=GAMMA))

    def torch_loss(m, b):
        dist, values = m(_t(b["obs"]))
        return ref.separate_value_loss(dist, values, _t(b["actions"]), _t(b["rewards"]), GAMMA)

    def targets(b):
        return R.normalize(R.discounted_returns(b["rewards"], jnp.zeros(24), GAMMA))

    def jax_loss(p, b):
        logits, values = trainer.policy.apply(p, b["obs"])
        lp = D.categorical_log_prob(logits, b["actions"])
        return reinforce_objective(lp, targets(b), jnp.zeros_like(lp), values=values,
                                   vf_coef=0.5)[0]

    def run_steps(rng, m, params):
        opt_theta = torch.optim.Adam(m.policy.parameters(), lr=lr)
        opt_w = torch.optim.Adam(m.value.parameters(), lr=value_lr)
        opt_state = trainer.tx.init(params)
        learn = jax.jit(trainer.learn)
        for _ in range(STEPS):
            b = _episode(rng, 24, 4, 2, dtype)
            opt_theta.zero_grad()
            opt_w.zero_grad()
            torch_loss(m, b).backward()
            torch.nn.utils.clip_grad_norm_(m.parameters(), clip)  # one norm over both nets
            opt_theta.step()
            opt_w.step()
            params, opt_state = learn(
                params, opt_state, trainer.config.hyperparams, 1.0, b["obs"][:, None],
                b["actions"][:, None], targets(b)[:, None], np.ones((24, 1), bool), None)[:2]
        return params

    return Setup(model, trainer.policy, model.MAPPING, torch_loss, jax_loss,
                 lambda rng, m: _episode(rng, 24, 4, 2, dtype), lr=lr, clip=clip,
                 run_steps=run_steps)


def gru(dtype, variant=None):
    """A GRU policy over a 24-step episode: torch's ``nn.GRU`` against our policy's GRU
    (``gru_size``), run through the Trainer's window re-run (``apply_sequence``)."""
    model = ref.GRUPolicy(4, 2, hidden=16)
    trainer = Trainer(TrainConfig(env="CartPole-v1", hidden_sizes=(), gru_size=16))

    def torch_loss(m, b):
        return ref.linewalk_loss(m(_t(b["obs"])).log_prob(_t(b["actions"])), _t(b["rewards"]),
                                 GAMMA)

    def jax_loss(p, b):
        T = len(b["rewards"])
        starts = (jnp.arange(T) == 0)[:, None]
        memory = jnp.zeros((1, 16), b["obs"].dtype)
        logits, _ = trainer.apply_sequence(p, b["obs"][:, None], memory, starts)
        lp = D.categorical_log_prob(logits[:, 0], b["actions"])
        G = R.normalize(R.discounted_returns(b["rewards"], jnp.zeros(T), GAMMA))
        return reinforce_loss(lp, G)

    return Setup(model, trainer.policy, model.MAPPING, torch_loss, jax_loss,
                 lambda rng, m: _episode(rng, 24, 4, 2, dtype), lr=3e-4, clip=0.5)


CASES: dict[str, Callable[..., Setup]] = {
    "1 categorical mean (LineWalk agents)": categorical,
    "1 categorical sum (LineWalk agents)": lambda d, v=None: categorical(d, v, reduction="sum"),
    "2 gaussian clamped log-std (LineWalk agents)": gaussian,
    "3 baseline shared backbone (LineWalk agents)": baseline,
    "4 gaussian bandit per-dim (FourCurves bandit)": bandit,
    "5 gamma^t weighted (gamma^t update)": gamma_t,
    "6 clamped probs + entropy (DigitMatch bandit)": probs_clamped,
    "7 per-step Sutton-Barto (per-step CartPole agent)": per_step,
    "8 padded vectorized batch": padded_batch,
    "9 per-step with baseline, SGD (update_every=step)": per_step_baseline,
    "10 per-step with baseline, Adam (update_every=step)":
        lambda d, v=None: per_step_baseline(d, v, optimizer="adam"),
    "11 two Adam optimizers (value_learning_rate)": separate_value_adam,
    "12 GRU policy over an episode (gru_size)": gru,
}


# ---------------------------------------------------------------- the runner
def _errors(ours, theirs, atol):
    a = np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(ours)])
    b = np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(theirs)])
    diff = np.abs(a - b)
    return diff, b, float(diff.max()), float((diff / np.maximum(np.abs(b), atol)).max())


def _torch_grads(model):
    return {k: (p.grad if p.grad is not None else torch.zeros_like(p))
            for k, p in model.named_parameters()}


def run_case(name: str, dtype: str, seed: int, variant: str | None = None) -> list[Row]:
    """Run one case in one dtype; return its gradient row and its 50-step row."""
    if dtype not in TOLERANCES:
        raise ValueError(f"dtype={dtype!r}; allowed: {', '.join(TOLERANCES)}")
    tol = TOLERANCES[dtype]
    torch_dtype = torch.float64 if dtype == "float64" else torch.float32
    x64 = jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext()
    with x64:
        torch.manual_seed(seed)
        setup = CASES[name](dtype, variant)
        model = setup.torch_model.to(torch_dtype)
        params = jax.tree.map(jnp.asarray,
                              torch_to_flax(model.state_dict(), setup.mapping, _np(dtype)))
        rng = np.random.default_rng(seed)
        clip = _clip_fn(setup.clip, variant)

        # one gradient
        batch = setup.make_batch(rng, model)
        model.zero_grad()
        setup.torch_loss(model, batch).backward()
        if setup.clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), setup.clip)
        theirs = torch_to_flax(_torch_grads(model), setup.mapping, np.float64)
        ours = clip(jax.grad(setup.jax_loss)(params, batch))
        diff, ref_vals, max_abs, max_rel = _errors(ours, theirs, tol["grad_atol"])
        ok = bool(np.all(diff <= tol["grad_atol"] + tol["grad_rtol"] * np.abs(ref_vals)))
        rows = [Row(name, dtype, "grad", max_abs, max_rel,
                    f"rtol {tol['grad_rtol']:g} atol {tol['grad_atol']:g}", ok)]

        # 50 optimizer steps on the same batches
        start = jax.tree.map(np.asarray, params)
        opt = torch.optim.Adam(model.parameters(), lr=setup.lr)
        tx = make_optimizer("adam")
        opt_state = set_learning_rate(tx.init(params), setup.lr)
        if setup.run_steps is not None:
            params = setup.run_steps(rng, model, params)
        elif setup.per_step:
            ep = setup.make_batch(rng, model)
            ref.per_step_episode(model, opt, _t(ep["obs"]), _t(ep["actions"]),
                                 _t(ep["rewards"]), GAMMA)
            G = R.discounted_returns(ep["rewards"], jnp.zeros(STEPS), GAMMA)
            logits_fn = lambda p, o: setup.flax_model.apply(p, o)[0]  # noqa: E731
            params, _ = jax.jit(per_step_updates, static_argnums=(0, 1))(
                logits_fn, tx, params, opt_state, ep["obs"], ep["actions"], G)
        else:
            @jax.jit
            def step(params, opt_state, batch):
                grads = clip(jax.grad(setup.jax_loss)(params, batch))
                updates, opt_state = tx.update(grads, opt_state, params)
                return optax.apply_updates(params, updates), opt_state

            for _ in range(STEPS):
                batch = setup.make_batch(rng, model)
                opt.zero_grad()
                setup.torch_loss(model, batch).backward()
                if setup.clip is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), setup.clip)
                opt.step()
                params, opt_state = step(params, opt_state, batch)
        theirs = torch_to_flax(model.state_dict(), setup.mapping, np.float64)
        diff, _, max_abs, max_rel = _errors(params, theirs, tol["steps_atol"])
        moved = _errors(params, start, 1.0)[2]
        rows.append(Row(name, dtype, f"{STEPS} steps", max_abs, max_rel,
                        f"atol {tol['steps_atol']:g}", bool(np.all(diff <= tol["steps_atol"])),
                        moved))
    return rows


def _clip_fn(max_norm: float | None, variant: str | None):
    if max_norm is None:
        return lambda g: g
    if variant == "optax_clip":  # the trap: optax has no +1e-6 in the denominator
        return lambda g: optax.clip_by_global_norm(max_norm).update(g, None)[0]
    return lambda g: clip_by_global_norm_torch(g, max_norm)[0]


def run_all(seed: int, dtypes=("float64", "float32"), cases=None) -> list[Row]:
    rows: list[Row] = []
    for name in cases or CASES:
        for dtype in dtypes:
            rows.extend(run_case(name, dtype, seed))
    return rows
