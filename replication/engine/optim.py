"""The paper's optimiser and learning-rate schedule (Section 5, "Details of learning").

- ``PaperSGD``: the paper's update, with the learning rate *inside* the
  momentum: ``v <- 0.9 v - 0.0005 eps w - eps grad``, ``w <- w + v``.
- ``LRSchedule``: "divide the learning rate by 10 when the validation error
  rate stopped improving with the current learning rate", at most three
  times (``plateau``), or at given epochs (``fixed``), or never (``constant``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


# --------------------------------------------------------------------------
# The paper's SGD (Section 5)
# --------------------------------------------------------------------------


class PaperSGD(torch.optim.Optimizer):
    """Stochastic gradient descent exactly as written in Section 5.

    ``v <- momentum * v - weight_decay * lr * w - lr * grad``; ``w <- w + v``.

    While the learning rate is constant this is the same trajectory as
    ``torch.optim.SGD(momentum=0.9, weight_decay=5e-4)``, whose buffer is
    ``b = momentum * b + grad + weight_decay * w`` with ``w <- w - lr * b``
    (so ``v = -lr * b``). Right after the learning rate is divided they
    differ: here the old velocity keeps its full size (``momentum * v`` was
    accumulated at the old rate), while torch rescales the whole buffer by the
    new rate. The state kept per parameter is ``velocity`` (``v``).
    """

    def __init__(self, params, lr: float, momentum: float = 0.9, weight_decay: float = 5e-4):
        if lr <= 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"invalid PaperSGD settings lr={lr} momentum={momentum} weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, momentum, decay = group["lr"], group["momentum"], group["weight_decay"]
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            velocities = []
            for p in params:
                state = self.state[p]
                if "velocity" not in state:
                    state["velocity"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                velocities.append(state["velocity"])
            grads = [p.grad for p in params]
            # v = momentum * v - decay * lr * w - lr * grad ; w = w + v
            torch._foreach_mul_(velocities, momentum)
            if decay:
                torch._foreach_add_(velocities, params, alpha=-decay * lr)
            torch._foreach_add_(velocities, grads, alpha=-lr)
            torch._foreach_add_(params, velocities)
        return loss


# --------------------------------------------------------------------------
# The learning-rate schedule (Section 5)
# --------------------------------------------------------------------------


@dataclass
class LRSchedule:
    """The learning rate and the rule that divides it by 10.

    ``plateau``: divide when the validation error has not improved for
    ``patience`` epochs, at most ``max_drops`` times (the paper: three times).
    ``fixed``: divide after each epoch listed in ``drop_epochs`` (1-based).
    ``constant``: never divide.
    """

    kind: str
    lr: float
    patience: int = 2
    max_drops: int = 3
    drop_epochs: tuple[int, ...] = ()
    best_error: float = math.inf
    drops: int = 0
    epochs_since_best: int = 0

    def step(self, epoch: int, val_error: float) -> bool:
        """Record the validation error after ``epoch`` (1-based); True when lr was divided."""
        if val_error < self.best_error:
            self.best_error, self.epochs_since_best = val_error, 0
        else:
            self.epochs_since_best += 1
        divide = False
        if self.kind == "plateau":
            divide = self.epochs_since_best >= self.patience and self.drops < self.max_drops
        elif self.kind == "fixed":
            divide = epoch in self.drop_epochs
        if divide:
            self.lr /= 10.0
            self.drops += 1
            self.epochs_since_best = 0
        return divide

    def state_dict(self) -> dict:
        return {"lr": self.lr, "best_error": self.best_error, "drops": self.drops,
                "epochs_since_best": self.epochs_since_best}

    def load_state_dict(self, state: dict) -> None:
        self.lr = float(state["lr"])
        self.best_error = float(state["best_error"])
        self.drops = int(state["drops"])
        self.epochs_since_best = int(state["epochs_since_best"])


