"""The training configuration: one frozen dataclass, validated before anything compiles.

Fields that fix array shapes or program structure are static; the numeric
hyper-parameters collected by ``TrainConfig.hyperparams`` are traced, so one compile
can ``vmap`` over many values of them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import jax.numpy as jnp


class HyperParams(NamedTuple):
    """Traced hyper-parameters: scalars, or arrays with a leading axis to vmap over."""

    learning_rate: jnp.ndarray | float
    gamma: jnp.ndarray | float
    ent_coef: jnp.ndarray | float
    vf_coef: jnp.ndarray | float
    max_grad_norm: jnp.ndarray | float
    value_learning_rate: jnp.ndarray | float | None = None  # None: learning_rate


@dataclass(frozen=True)
class TrainConfig:
    """REINFORCE on a gymnax environment, many environments per update."""

    env: str = "CartPole-v1"
    """Environment: any gymnax env (`reinforce-jax envs` lists them with their spaces:
    CartPole-v1, Acrobot-v1, MountainCar-v0, Pendulum-v1, MountainCarContinuous-v0, the
    MinAtar games such as Breakout-MinAtar, bsuite's such as Catch-bsuite and
    MemoryChain-bsuite, misc such as FourRooms-misc and FrozenLake-misc); the reference
    systems' tasks FourCurves, LineWalk, DigitMatch-N and DigitMatch-N-onehot (any
    N >= 2); or a name added with `reinforce_jax.register_env`."""
    num_envs: int = 48
    """Parallel environments per seed; in episodic mode, episodes per update."""
    num_updates: int = 150
    """Policy updates per seed."""
    total_env_steps: int | None = None
    """A budget in env steps instead of `num_updates`: num_updates becomes
    ceil(total_env_steps / (num_envs x rollout length)), the steps an update computes
    (rollout length: `horizon`, or in episodic mode the env's time limit when horizon is
    0), as PPO-style libraries count them. Leave num_updates at its default with it;
    giving both is refused. None: use num_updates."""
    rollout: Literal["episodic", "fixed"] = "episodic"
    """episodic: every env plays one whole episode from reset per update (exact
    Monte-Carlo). fixed: `horizon` steps with auto-reset; unfinished tails are
    bootstrapped with the baseline, or dropped without one."""
    horizon: int = 0
    """Steps per update. episodic: 0 means the env's time limit (a smaller value cuts
    episodes there, as a truncation). fixed: 0 means 128."""
    optimizer: Literal["adam", "sgd"] = "adam"
    """Adam (torch defaults) or plain SGD."""
    learning_rate: float = 5e-3
    """Optimizer step size (traced)."""
    value_learning_rate: float | None = None
    """Step size of the value network (traced; needs baseline=separate). Its parameters
    get an optimizer state of their own, as with two torch optimizers. Default: the
    same as learning_rate."""
    update_every: Literal["batch", "step"] = "batch"
    """batch: one optimizer step per update, on the whole batch. step: Sutton & Barto's
    boxes, one optimizer step per time step t of the episodes, in order, on the envs'
    step-t terms (their mean or sum, by reduction); num_envs=1 is the book exactly."""
    anneal_lr: bool = True
    """Decay the learning rate linearly to 0 over `num_updates` (settles the final policy)."""
    gamma: float = 0.99
    """Discount in [0, 1] (traced)."""
    ent_coef: float = 0.0
    """Entropy bonus coefficient, >= 0 (traced)."""
    vf_coef: float = 0.5
    """Value-loss coefficient, >= 0, used with a baseline (traced)."""
    max_grad_norm: float = 0.5
    """Global-norm gradient clip, torch-style; inf disables it (traced)."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths; () gives a linear policy."""
    gru_size: int = 0
    """> 0: a GRU of this many units after the torso, for tasks that need memory. Its
    state starts at zero with every episode; the learner re-runs each update's whole
    sequence through it (full backpropagation through time within the update)."""
    torso: Literal["auto", "mlp", "conv"] = "auto"
    """What reads the observation before the hidden layers. conv: MinAtar's one 3x3
    convolution with 16 channels (then --hidden-sizes; MinAtar's standard is 128), for
    image observations [H, W, C]. mlp: the observation flattened. auto: conv for 3-D
    observations, else mlp. Integer observations are cast to float, and a discrete
    observation space is one-hot encoded."""
    activation: Literal["tanh", "relu", "sigmoid", "elu", "gelu"] = "tanh"
    """Hidden activation."""
    head_bias: bool = True
    """The policy head (logits or mean) has a bias. Turn it off for one-hot inputs: there
    the bias is the one parameter every input shares, and its steady pull toward the
    actions that are best on average drags every input's policy along (DigitMatch-100)."""
    baseline: Literal["none", "shared", "separate", "group"] = "none"
    """Baseline: none, a value head on the policy backbone, a separate value network, or
    group: the leave-one-out mean return of the other envs in the same group at the same
    step (needs `group_size` >= 2; no value network)."""
    group_size: int = 1
    """Envs come in groups of this size that share their reset and transition randomness,
    so a group starts from the same state and sees the same environment noise; only the
    actions differ. `num_envs` must be a multiple of it. 1 = every env independent."""
    log_std: Literal["state", "free"] = "state"
    """Gaussian policies: state-dependent clamped log-std head, or one free parameter."""
    log_std_min: float = -20.0
    """Lower clamp of a state-dependent log-std."""
    log_std_max: float = 2.0
    """Upper clamp of a state-dependent log-std."""
    normalize_returns: Literal["none", "batch", "episode"] = "batch"
    """(G - mean) / (unbiased std + 1e-8) over the whole batch, per episode, or not."""
    return_mode: Literal["reward_to_go", "episode"] = "reward_to_go"
    """Weight each log-prob by the reward-to-go G_t, or by the whole-episode return G_0."""
    gamma_t_weighting: bool = False
    """Multiply step t's term by gamma^t (Sutton & Barto's γ^t update)."""
    reduction: Literal["mean", "sum"] = "mean"
    """Loss reduction over valid steps."""
    grad_chunk_rows: int = 8192
    """The learner sums the gradient over slices of about this many (step, env) rows, so
    each slice's activations stay in cache; 0 = the whole batch at once. Same gradient up
    to float round-off."""

    @property
    def value_head(self) -> str:
        """The policy's value head: "shared", "separate", or "none"."""
        return self.baseline if self.baseline in ("shared", "separate") else "none"

    @property
    def hyperparams(self) -> HyperParams:
        value_lr = self.learning_rate if self.value_learning_rate is None \
            else self.value_learning_rate
        return HyperParams(self.learning_rate, self.gamma, self.ent_coef, self.vf_coef,
                           self.max_grad_norm, value_lr)

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def rollout_length(self, spec) -> int:
        """Env steps each env computes per update (``Trainer.num_steps``): the horizon,
        else the env's time limit (episodic) or 128 (fixed)."""
        from reinforce_jax.train import FIXED_DEFAULT_HORIZON

        if self.horizon > 0:
            return self.horizon
        return spec.max_steps if self.rollout == "episodic" else FIXED_DEFAULT_HORIZON

    def validate(self) -> "TrainConfig":
        """Raise ``ValueError`` naming the first bad field, its value and what is allowed;
        return the config to train with.

        That is ``self``, except with ``total_env_steps`` set: then a copy whose
        ``num_updates`` is derived from it. The derivation lives here because every path
        to training (``Trainer``, the sweep's grid points, the command line) already trains
        the config ``validate`` returns, so the learning-rate anneal, chunking,
        checkpoints and sweeps all see one ``num_updates``. The copy keeps
        ``total_env_steps`` (config.json shows both) and validates to itself again.
        """
        from reinforce_jax.envs import make_env

        spec = make_env(self.env)[2]
        if self.torso == "conv" and len(spec.obs_shape) != 3:
            raise ValueError(f"torso='conv' with env={self.env!r}, whose observations have "
                             f"shape {spec.obs_shape}; allowed: 'mlp' or 'auto' (conv needs "
                             "[H, W, C] images)")
        _check_int(self, "num_envs", 1)
        _check_int(self, "num_updates", 1)
        _check_int(self, "horizon", 0)
        _check_int(self, "group_size", 1)
        _check_int(self, "grad_chunk_rows", 0)
        _check_int(self, "gru_size", 0)
        if self.gru_size and self.update_every == "step":
            raise ValueError(f"gru_size={self.gru_size} with update_every='step'; allowed: "
                             "update_every='batch' (a per-step update would re-run the "
                             "sequence at every step)")
        if self.gru_size and self.rollout == "fixed" and self.baseline in ("shared",
                                                                            "separate"):
            raise ValueError(f"gru_size={self.gru_size} with rollout='fixed' and "
                             f"baseline={self.baseline!r}; allowed: rollout='episodic', or "
                             "baseline 'none' or 'group' (bootstrapping a cut episode would "
                             "need the memory at its last observation)")
        if self.num_envs % self.group_size:
            raise ValueError(f"group_size={self.group_size!r} with num_envs={self.num_envs!r};"
                             " allowed: a divisor of num_envs")
        _check_choice(self, "rollout", ("episodic", "fixed"))
        _check_choice(self, "optimizer", ("adam", "sgd"))
        _check_choice(self, "activation", ("tanh", "relu", "sigmoid", "elu", "gelu"))
        _check_choice(self, "baseline", ("none", "shared", "separate", "group"))
        if self.baseline == "group" and self.group_size < 2:
            raise ValueError(f"baseline='group' with group_size={self.group_size!r}; allowed:"
                             " group_size >= 2 (the baseline averages the other group members)")
        _check_choice(self, "log_std", ("state", "free"))
        _check_choice(self, "normalize_returns", ("none", "batch", "episode"))
        _check_choice(self, "return_mode", ("reward_to_go", "episode"))
        _check_choice(self, "reduction", ("mean", "sum"))
        _check_choice(self, "update_every", ("batch", "step"))
        _check_choice(self, "torso", ("auto", "mlp", "conv"))
        if not (isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0
                and math.isfinite(self.learning_rate)):
            raise ValueError(f"learning_rate={self.learning_rate!r}; allowed: a finite number > 0")
        if self.value_learning_rate is not None:
            v = self.value_learning_rate
            if not (isinstance(v, (int, float)) and v > 0 and math.isfinite(v)):
                raise ValueError(f"value_learning_rate={v!r}; allowed: a finite number > 0")
            if self.baseline != "separate":
                raise ValueError(f"value_learning_rate with baseline={self.baseline!r}; "
                                 "allowed: baseline='separate' (a value network of its own; "
                                 "a shared trunk's value head trains at learning_rate, its "
                                 "loss scaled by vf_coef)")
        if not (0.0 <= self.gamma <= 1.0):
            raise ValueError(f"gamma={self.gamma!r}; allowed: 0 <= gamma <= 1")
        for name in ("ent_coef", "vf_coef"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"{name}={value!r}; allowed: a finite number >= 0")
        if not self.max_grad_norm > 0:
            raise ValueError(f"max_grad_norm={self.max_grad_norm!r}; allowed: > 0 (inf = no clip)")
        if any((not isinstance(h, int)) or h < 1 for h in self.hidden_sizes):
            raise ValueError(f"hidden_sizes={self.hidden_sizes!r}; allowed: integers >= 1")
        if not self.log_std_min < self.log_std_max:
            raise ValueError(f"log_std_min={self.log_std_min!r}, log_std_max={self.log_std_max!r};"
                             " allowed: log_std_min < log_std_max")
        if self.rollout == "fixed" and self.normalize_returns == "episode":
            raise ValueError("normalize_returns='episode' with rollout='fixed'; allowed: 'none' or"
                             " 'batch' (a fixed window has no whole episodes to normalize)")
        return self._with_budget(spec)

    def _with_budget(self, spec) -> "TrainConfig":
        """``self`` with ``num_updates`` derived from ``total_env_steps``, if that is set."""
        steps = self.total_env_steps
        if steps is None:
            return self
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"total_env_steps={steps!r}; allowed: an integer >= 1, or None "
                             "(use num_updates)")
        per_update = self.num_envs * self.rollout_length(spec)
        updates = -(-steps // per_update)
        default = TrainConfig.num_updates
        if self.num_updates not in (default, updates):  # == updates: already derived
            raise ValueError(f"num_updates={self.num_updates!r} with total_env_steps={steps!r}"
                             f"; allowed: one of them (the budget gives {updates} update(s) of "
                             f"{per_update} env steps; leave num_updates at {default})")
        return dataclasses.replace(self, num_updates=updates)


def _check_int(cfg: TrainConfig, name: str, low: int) -> None:
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name}={value!r}; allowed: an integer >= {low}")


def _check_choice(cfg: TrainConfig, name: str, allowed: tuple[str, ...]) -> None:
    value = getattr(cfg, name)
    if value not in allowed:
        raise ValueError(f"{name}={value!r}; allowed: {', '.join(allowed)}")
