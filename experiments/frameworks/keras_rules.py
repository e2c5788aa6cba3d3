"""Keras 3's update rules on PyTorch tensors, so that the PyTorch twin steps as Keras and scratchnn do.

torch.optim.SGD is Keras's SGD (with momentum and Nesterov too: its buffer is Keras's
velocity over -lr), so it is used as it is. PyTorch's Adam and RMSprop put epsilon elsewhere
than Keras, so those two rules are written out here, each operation in scratchnn's order:

    RMSprop: v <- rho v + (1 - rho) g^2;  increment = lr g / sqrt(v + epsilon)
             momentum = 0: w <- w - increment;  else m <- momentum m + increment, w <- w - m
    Adam:    alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)  (powers in float32, as Keras)
             m <- m + (g - m)(1 - beta_1);  v <- v + (g^2 - v)(1 - beta_2)
             w <- w - alpha m / (sqrt(v) + epsilon)
"""

import copy

import numpy as np
import torch


class KerasRule(torch.optim.Optimizer):
    """A torch optimizer whose `update_step` is one Keras rule; state is per parameter."""

    def __init__(self, params, **hyper):
        super().__init__(params, defaults=hyper)
        self.iterations = 0

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for w in group["params"]:
                if w.grad is not None:
                    self.update_step(w.grad, w, self.state[w], group)
        self.iterations += 1

    def state_copy(self):
        return copy.deepcopy(self.state_dict()), self.iterations

    def restore(self, saved):
        self.load_state_dict(saved[0])
        self.iterations = saved[1]


class RMSprop(KerasRule):
    def update_step(self, g, w, state, h):
        v = state.setdefault("v", torch.zeros_like(w))
        v.mul_(h["rho"]).add_(g.square() * (1 - h["rho"]))
        increment = g * h["lr"] / (v + h["epsilon"]).sqrt()
        if h["momentum"]:
            m = state.setdefault("m", torch.zeros_like(w))
            increment = m.mul_(h["momentum"]).add_(increment)
        w.sub_(increment)


class Adam(KerasRule):
    def update_step(self, g, w, state, h):
        t = self.iterations + 1
        f = np.float32
        alpha = float(f(h["lr"]) * np.sqrt(1 - f(h["beta_2"]) ** t) / (1 - f(h["beta_1"]) ** t))
        m = state.setdefault("m", torch.zeros_like(w))
        v = state.setdefault("v", torch.zeros_like(w))
        m.add_((g - m) * (1 - h["beta_1"]))
        v.add_((g.square() - v) * (1 - h["beta_2"]))
        w.sub_(m * alpha / (v.sqrt() + h["epsilon"]))


class SGD(torch.optim.SGD):
    """torch.optim.SGD with the state helpers of KerasRule."""

    def state_copy(self):
        return copy.deepcopy(self.state_dict())

    def restore(self, saved):
        self.load_state_dict(saved)


def keras_optimizer(opt_cfg, params):
    """The optimizer of a scratchnn optimizer config (`_target_` names SGD, RMSprop or Adam)."""
    hyper = {k: v for k, v in opt_cfg.items() if k != "_target_"}
    name = opt_cfg["_target_"].rsplit(".", 1)[-1]
    if name == "SGD":
        return SGD(params, lr=hyper["lr"], momentum=hyper.get("momentum", 0.0), nesterov=hyper.get("nesterov", False))
    return {"RMSprop": RMSprop, "Adam": Adam}[name](params, **hyper)
