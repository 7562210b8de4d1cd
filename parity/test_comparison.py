"""``parity.compare``: the weight mapping, the per-leaf report, and the trap detector on
deliberately wrong torch losses (one per trap), each of which must be named."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
import torch.nn.functional as F

from parity import compare
from parity.comparison import auto_mapping, explicit_mapping, to_flax
from parity.conventions import (
    TORCH,
    Conventions,
    categorical_log_prob,
    discounted_returns,
    normalize_returns,
    reinforce_loss,
)
from reinforce_jax import returns as R
from reinforce_jax.policies import DiscretePolicy

GAMMA = 0.9
T = 12


class TorchAgent(torch.nn.Module):
    """4 -> 8 tanh -> 8 tanh (square: the layout trap shows) -> 3 logits, and a value head.
    Action 1's bias is -40, so its probability is below float64 eps: the probs form
    clamps it."""

    def __init__(self, square_bug=False):
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(4, 8), torch.nn.Linear(8, 8)
        self.pi, self.v = torch.nn.Linear(8, 3), torch.nn.Linear(8, 1)
        self.square_bug = square_bug
        with torch.no_grad():
            self.pi.bias.copy_(torch.tensor([0.0, -40.0, 0.5]))

    def forward(self, x):
        h = torch.tanh(self.fc1(x))
        if self.square_bug:  # x @ W where nn.Linear computes x @ W.T
            h = torch.tanh(h @ self.fc2.weight + self.fc2.bias)
        else:
            h = torch.tanh(self.fc2(h))
        return self.pi(h), self.v(h).squeeze(-1)


class FlaxAgent(nn.Module):
    @nn.compact
    def __call__(self, x):
        h = jnp.tanh(nn.Dense(8)(x))
        h = jnp.tanh(nn.Dense(8)(h))
        return nn.Dense(3)(h), nn.Dense(1)(h)[..., 0]


def discounted(r, gamma=GAMMA):
    G, out = 0.0, []
    for x in reversed(r.tolist()):
        G = x + gamma * G
        out.insert(0, G)
    return torch.tensor(out, dtype=r.dtype)


def torch_loss(model, b, trap=None):
    """The common torch script's loss; ``trap`` makes it deliberately different."""
    logits, v = model(b["obs"])
    if trap == "log_prob":
        lp = torch.distributions.Categorical(probs=torch.softmax(logits, -1)).log_prob(
            b["actions"])
    else:
        lp = torch.distributions.Categorical(logits=logits).log_prob(b["actions"])
    G = discounted(b["rewards"])
    std = G.std(unbiased=False) if trap == "std_ddof" else G.std()
    G = (G - G.mean()) / (std + 1e-8)
    A = G - v if trap == "stop_gradient" else G - v.detach()
    if trap == "gamma_t":
        A = A * GAMMA ** torch.arange(len(G), dtype=G.dtype)
    terms = -(lp * A)
    pg = terms.sum() if trap == "reduction" else terms.mean()
    return pg + 0.5 * F.mse_loss(v, G)


def clip_without_eps(parameters, max_norm):  # a hand-written clip, as some scripts have
    parameters = list(parameters)
    norm = torch.sqrt(sum((p.grad**2).sum() for p in parameters))
    for p in parameters:
        p.grad.mul_(torch.clamp(max_norm / norm, max=1.0))


def jax_loss(params, b, conventions=TORCH):
    logits, v = FlaxAgent().apply(params, b["obs"])
    lp = categorical_log_prob(logits, b["actions"], conventions)
    return reinforce_loss(lp, b["rewards"], GAMMA, conventions, values=v)


def make_batch(rng):
    return {"obs": rng.normal(size=(T, 4)), "actions": rng.integers(0, 3, size=T),
            "rewards": rng.normal(size=T)}


def run(trap=None, **kw):
    torch.manual_seed(0)
    model = TorchAgent(square_bug=trap == "weight_layout")
    settings = dict(example_input=np.zeros((1, 4)), steps=3, lr=1e-2, clip=0.1,
                    dtypes=("float64",), jit=False)
    if trap == "clip_eps":
        settings["torch_clip"] = clip_without_eps
    settings.update(kw)
    return compare(model, lambda m, b: torch_loss(m, b, trap), FlaxAgent(), jax_loss,
                   make_batch, **settings)


def test_correct_port_passes_in_both_dtypes():
    report = run(dtypes=("float64", "float32"), steps=5)
    assert report.passed, "\n".join(report.lines())
    assert report.traps is None
    names = {(r.parameter, r.dtype, r.check) for r in report.rows}
    assert ("Dense_1/kernel", "float32", "5 steps") in names and len(names) == 8 * 2 * 2
    assert all(r.diverged_at is None and len(r.step_max_abs) == 5 for r in report.runs)
    assert all(r.moved > 1e-2 for r in report.runs)  # 5 Adam steps of lr 1e-2: not vacuous
    assert report.runs[0].loss_torch == pytest.approx(report.runs[0].loss_jax, rel=1e-12)


@pytest.mark.parametrize("trap", ["std_ddof", "clip_eps", "log_prob", "reduction", "gamma_t",
                                  "stop_gradient", "weight_layout"])
def test_each_deliberately_wrong_torch_loss_names_its_trap(trap):
    report = run(trap)
    assert not report.passed
    assert report.runs[0].diverged_at is not None
    assert [t.field for t in report.explained_by] == [trap], "\n".join(report.lines())
    assert len(report.traps) == 7  # every trap was tried, and only this one agrees
    assert any(f"trap found: your torch code matches ours with {trap}=" in line
               for line in report.lines())


def test_two_traps_at_once_are_not_one_trap_but_the_closest_is_named():
    torch.manual_seed(0)

    def two_wrong(m, b):  # summed and normalized with ddof=0
        logits, v = m(b["obs"])
        lp = torch.distributions.Categorical(logits=logits).log_prob(b["actions"])
        G = discounted(b["rewards"])
        G = (G - G.mean()) / (G.std(unbiased=False) + 1e-8)
        return -(lp * (G - v.detach())).sum() + 0.5 * F.mse_loss(v, G)

    report = compare(TorchAgent(), two_wrong, FlaxAgent(), jax_loss, make_batch,
                     example_input=np.zeros((1, 4)), steps=2, dtypes=("float64",),
                     jit=False)
    assert report.explained_by == []
    assert any(line.startswith("closest: reduction='sum'") for line in report.lines())


def test_without_conventions_only_the_weight_traps_are_tried():
    def plain_loss(params, b):
        return jax_loss(params, b)
    torch.manual_seed(0)
    report = compare(TorchAgent(), lambda m, b: torch_loss(m, b, "std_ddof"), FlaxAgent(),
                     plain_loss, make_batch, example_input=np.zeros((1, 4)), steps=2,
                     clip=0.1, dtypes=("float64",), jit=False)
    assert [t.field for t in report.traps] == ["clip_eps", "weight_layout"]
    assert report.explained_by == []
    assert "jax_loss takes no 'conventions' argument" in report.trap_note


def test_trajectory_divergence_step_is_the_first_step_past_tolerance():
    # a torch lr 1.5x ours: the gradients agree, the first step already differs
    torch.manual_seed(0)
    pair = (lambda ps: torch.optim.SGD(ps, lr=1.5e-2), optax.sgd(1e-2))
    report = compare(TorchAgent(), torch_loss, FlaxAgent(), jax_loss, make_batch,
                     example_input=np.zeros((1, 4)), steps=3, optimizer=pair,
                     dtypes=("float64",), jit=False, find_traps=False)
    grad_rows = [r for r in report.rows if r.check == "grad"]
    assert all(r.passed for r in grad_rows)
    assert report.runs[0].diverged_at == 1 and report.traps is None


def test_our_discrete_policy_maps_automatically_and_jitted_adam_agrees():
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(),
                                torch.nn.Linear(16, 16), torch.nn.Tanh(),
                                torch.nn.Linear(16, 2))
    policy = DiscretePolicy(2, (16, 16), "tanh")

    def t_loss(m, b):
        lp = torch.distributions.Categorical(logits=m(b["obs"])).log_prob(b["actions"])
        return -(lp * b["rewards"]).sum()

    def j_loss(p, b):
        lp = categorical_log_prob(policy.apply(p, b["obs"])[0], b["actions"])
        return -(lp * b["rewards"]).sum()

    batches = [{**make_batch(np.random.default_rng(i)),
                "actions": np.random.default_rng(i).integers(0, 2, size=T)} for i in range(4)]
    report = compare(model, t_loss, policy, j_loss, batches, example_input=np.zeros((1, 4)),
                     weight_decay=1e-2)
    assert report.mapping == {"0": "params/hidden_0", "2": "params/hidden_1",
                              "4": "params/logits"}
    assert report.steps == 3 and report.passed, "\n".join(report.lines())


def test_ambiguous_layers_need_a_mapping():
    class Two(torch.nn.Module):  # the value layer first in torch, second in flax
        def __init__(self):
            super().__init__()
            self.value, self.policy = torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)
            self.out = torch.nn.Linear(4, 2)

    params = {"policy": {"kernel": np.zeros((4, 4)), "bias": np.zeros(4)},
              "value": {"kernel": np.zeros((4, 4)), "bias": np.zeros(4)},
              "out": {"kernel": np.zeros((4, 2))}}  # no bias: the order pairing fails
    with pytest.raises(ValueError, match=r"ambiguous: torch value .*policy .*Pass mapping"):
        auto_mapping(Two(), params)
    params["out"]["bias"] = np.zeros(2)
    model = Two()
    # the order pairing is accepted, so the explicit mapping is what names them right
    links = auto_mapping(model, params)
    assert [(lk.torch, lk.flax) for lk in links] == [("value", "policy"), ("policy", "value"),
                                                     ("out", "out")]
    links = explicit_mapping(model, {"value": "value", "policy": "policy", "out": "out"})
    assert [(lk.torch, lk.flax) for lk in links] == [("value", "value"), ("policy", "policy"),
                                                     ("out", "out")]
    with pytest.raises(ValueError, match="not one the automatic mapping knows"):
        auto_mapping(torch.nn.Sequential(torch.nn.LayerNorm(4)), params)


def test_conv_gru_bare_parameter_and_row_split_are_copied():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(2, 3, (3, 2))
            self.gru = torch.nn.GRU(3, 5)
            self.head = torch.nn.Linear(5, 4)
            self.log_std = torch.nn.Parameter(torch.arange(2.0))

    torch.manual_seed(2)
    net = Net()
    params = {"conv": {"kernel": np.zeros((3, 2, 2, 3)), "bias": np.zeros(3)},
              "cell": {g: {"kernel": np.zeros((3 if g[0] == "i" else 5, 5)),
                           "bias": np.zeros(5)} for g in ("ir", "iz", "in", "hr", "hz", "hn")},
              "mean": {"kernel": np.zeros((5, 2)), "bias": np.zeros(2)},
              "scale": {"kernel": np.zeros((5, 2)), "bias": np.zeros(2)},
              "log_std": np.zeros(2)}
    links = explicit_mapping(net, {"conv": "conv", "gru": "cell", "log_std": "log_std",
                                   "head": [("mean", slice(0, 2)), ("scale", slice(2, 4))]})
    out = to_flax(dict(net.named_parameters()), links, params, np.float64)
    x = torch.randn(1, 2, 6, 4, dtype=torch.float32)
    want = net.conv(x).detach().numpy().transpose(0, 2, 3, 1)  # NCHW -> NHWC
    got = nn.Conv(3, (3, 2), padding="VALID").apply({"params": out["conv"]},
                                                     x.numpy().transpose(0, 2, 3, 1))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out["cell"]["hz"]["kernel"],
                                  net.gru.weight_hh_l0.detach().numpy()[5:10].T)
    np.testing.assert_array_equal(out["scale"]["bias"], net.head.bias.detach().numpy()[2:])
    np.testing.assert_array_equal(out["log_std"], [0.0, 1.0])
    assert list(out) == list(params)  # the template's order is kept
    with pytest.raises(ValueError, match="no torch weight fills"):
        to_flax(dict(net.named_parameters()), links[:3], params, np.float64)


def test_flax_gru_cell_without_gate_biases_is_refused():
    params = nn.GRUCell(5).init(jax.random.key(0), jnp.zeros((1, 5)), jnp.zeros((1, 3)))
    with pytest.raises(ValueError, match="no bias on some of"):
        auto_mapping(torch.nn.GRU(3, 5), params)


def test_conventions_are_torch_defaults():
    assert TORCH == Conventions(std_ddof=1, norm_eps=1e-8, clip_eps=1e-6, log_prob="logits",
                                reduction="mean", gamma_t=False, stop_gradient=True,
                                weight_layout="in_out")


def test_convention_pieces_by_hand():
    with jax.enable_x64(True):
        r = jnp.array([1.0, 0.0, 2.0])
        np.testing.assert_allclose(discounted_returns(r, 0.5), [1.5, 1.0, 2.0], rtol=1e-15)
        np.testing.assert_allclose(discounted_returns(r, 0.0), r)
        rN = jnp.asarray(np.random.default_rng(0).normal(size=(7, 3)))
        np.testing.assert_allclose(discounted_returns(rN, 0.9),
                                   R.discounted_returns(rN, jnp.zeros((7, 3)), 0.9), rtol=1e-14)
        G = jnp.array([1.0, 3.0])  # mean 2; std 1 (ddof=0) or sqrt(2) (ddof=1)
        np.testing.assert_allclose(normalize_returns(G, Conventions(std_ddof=0, norm_eps=0.0)),
                                   [-1.0, 1.0], rtol=1e-15)
        np.testing.assert_allclose(normalize_returns(G, Conventions(norm_eps=0.0)),
                                   [-0.5**0.5, 0.5**0.5], rtol=1e-15)
        # loss of log_probs [-1, -2], rewards [1, 0], gamma 0.5, no normalization: G = [1, 0]
        lp = jnp.array([-1.0, -2.0])
        args = (jnp.array([1.0, 0.0]), 0.5)
        assert float(reinforce_loss(lp, *args, normalize=False)) == 0.5
        assert float(reinforce_loss(lp, *args, Conventions(reduction="sum"),
                                    normalize=False)) == 1.0
        # with a baseline V = [0.5, 0.5]: A = [0.5, -0.5]; pg = (0.5 - 1) / 2; MSE 0.25
        V = jnp.array([0.5, 0.5])
        assert float(reinforce_loss(lp, *args, values=V, normalize=False)) == pytest.approx(
            -0.25 + 0.5 * 0.25)


def test_a_plain_jax_function_with_torch_layout_weights():
    """No flax: a params dict in torch's [out, in] layout, copied as it is by name."""
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))
    params = {"W1": np.zeros((6, 4)), "b1": np.zeros(6), "W2": np.zeros((3, 6)),
              "b2": np.zeros(3)}

    def t_loss(m, b):
        lp = torch.distributions.Categorical(logits=m(b["obs"])).log_prob(b["actions"])
        return -(lp * b["rewards"]).mean()

    def j_loss(p, b):
        logits = jnp.tanh(b["obs"] @ p["W1"].T + p["b1"]) @ p["W2"].T + p["b2"]
        return -(categorical_log_prob(logits, b["actions"]) * b["rewards"]).mean()

    with pytest.raises(ValueError, match="no flax layer for torch 0 .*Pass mapping"):
        compare(model, t_loss, params, j_loss, make_batch)
    mapping = {"0.weight": "W1", "0.bias": "b1", "2.weight": "W2", "2.bias": "b2"}
    report = compare(model, t_loss, params, j_loss, make_batch, mapping=mapping, steps=2,
                     jit=False)
    assert report.passed, "\n".join(report.lines())
    assert [r.parameter for r in report.rows[:4]] == ["W1", "b1", "W2", "b2"]
