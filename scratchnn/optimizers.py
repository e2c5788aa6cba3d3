"""Optimizers with the update rules, defaults and epsilons of Keras 3.

`step(params, grads)` updates each array of `params` in place from the matching array of
`grads` and counts one iteration. Each class implements one `update_step(g, w, slots)`
whose rule is written in its docstring; `slots` holds that variable's state arrays and the
scratch arrays t1, t2, so that a step allocates nothing. Each operation is done in the order
Keras does it, so that float32 results agree.
"""

import numpy as np

from . import bounds


class Optimizer:
    """Base class: a learning rate, an iteration count and per-variable state ("slots").

    Subclasses set `name` and `slot_names` and implement `update_step`.

    Args:
        lr: Positive finite float, the learning rate (`bounds.BOUNDS`).
    """

    name = ""
    slot_names = ()

    def __init__(self, lr):
        bounds.check("lr", lr)
        self.lr = float(lr)
        self.iterations = 0
        self._slots = []

    def step(self, params, grads):
        """Update every array of `params` in place from its gradient; counts one iteration.

        Args:
            params: List of parameter arrays, updated in place.
            grads: List of gradient arrays dC/dparam, in the order of `params`. Read only.
        """
        if not self._slots:
            self._slots = [{k: np.zeros_like(w) for k in self.slot_names} for w in params]
        for w, g, slots in zip(params, grads, self._slots):
            self.update_step(g, w, slots)
        self.iterations += 1

    def update_step(self, g, w, slots):
        """Update one variable in place by the rule in the class docstring.

        Args:
            g: The gradient of `w`. Read only.
            w: The variable, updated in place.
            slots: Dict of this variable's state arrays (and scratch arrays t1, t2), by name.
        """
        raise NotImplementedError

    def get_config(self):
        """The dict `get` rebuilds this optimizer from (its state is not included)."""
        return {"name": self.name, "lr": self.lr}


class SGD(Optimizer):
    """Keras `SGD(learning_rate=0.01, momentum=0.0, nesterov=False)`.

    momentum = 0:  w <- w - lr g
    momentum > 0:  m <- momentum m - lr g
                   w <- w + m                         (classical)
                   w <- w + momentum m - lr g         (nesterov)

    Args:
        lr: Positive float, the learning rate. Default 0.01.
        momentum: Float in [0, 1). Default 0.
        nesterov: Whether to use Nesterov momentum.
    """

    name = "sgd"

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False):
        super().__init__(lr)
        bounds.check("momentum", momentum)
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self.slot_names = ("m", "t1", "t2") if self.momentum else ("t1",)

    def update_step(self, g, w, slots):
        lr_g = np.multiply(g, self.lr, out=slots["t1"])
        if not self.momentum:
            w -= lr_g
            return
        m = slots["m"]
        m *= self.momentum
        m -= lr_g
        if self.nesterov:
            w += np.subtract(np.multiply(m, self.momentum, out=slots["t2"]), lr_g, out=slots["t2"])
        else:
            w += m

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class RMSprop(Optimizer):
    """Keras `RMSprop(learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7)`, not centered.

    v <- rho v + (1 - rho) g^2
    increment = lr g / sqrt(v + epsilon)
    momentum = 0:  w <- w - increment
    momentum > 0:  m <- momentum m + increment;  w <- w - m

    Args:
        lr: Positive float, the learning rate. Default 0.001.
        rho: Float in [0, 1), the decay of the running mean of g^2.
        momentum: Float in [0, 1). Default 0.
        epsilon: Small positive float added to v inside the square root.
    """

    name = "rmsprop"

    def __init__(self, lr=0.001, rho=0.9, momentum=0.0, epsilon=1e-7):
        super().__init__(lr)
        for key, value in (("rho", rho), ("momentum", momentum), ("epsilon", epsilon)):
            bounds.check(key, value)
        self.rho, self.momentum, self.epsilon = float(rho), float(momentum), float(epsilon)
        self.slot_names = ("v", "m", "t1", "t2") if self.momentum else ("v", "t1", "t2")

    def update_step(self, g, w, slots):
        v, t1, t2 = slots["v"], slots["t1"], slots["t2"]
        v *= self.rho
        v += np.multiply(np.square(g, out=t1), 1 - self.rho, out=t1)
        increment = np.divide(np.multiply(g, self.lr, out=t2), np.sqrt(np.add(v, self.epsilon, out=t1), out=t1), out=t2)
        if self.momentum:
            m = slots["m"]
            m *= self.momentum
            m += increment
            increment = m
        w -= increment

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon}


class Adam(Optimizer):
    """Keras `Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7)`, t = iteration + 1,
    with the powers computed in the variable's dtype, as Keras does.

    alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)
    m <- m + (g - m)(1 - beta_1)
    v <- v + (g^2 - v)(1 - beta_2)
    w <- w - alpha m / (sqrt(v) + epsilon)

    Args:
        lr: Positive float, the learning rate. Default 0.001.
        beta_1: Float in [0, 1), the decay of the first moment m.
        beta_2: Float in [0, 1), the decay of the second moment v.
        epsilon: Small positive float added to sqrt(v).
    """

    name = "adam"
    slot_names = ("m", "v", "t1", "t2")

    def __init__(self, lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        super().__init__(lr)
        for key, value in (("beta_1", beta_1), ("beta_2", beta_2), ("epsilon", epsilon)):
            bounds.check(key, value)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def update_step(self, g, w, slots):
        t = self.iterations + 1
        f = w.dtype.type  # the powers in the variable's precision, as Keras computes them
        alpha = f(self.lr) * np.sqrt(1 - f(self.beta_2) ** t) / (1 - f(self.beta_1) ** t)
        m, v, t1, t2 = slots["m"], slots["v"], slots["t1"], slots["t2"]
        m += np.multiply(np.subtract(g, m, out=t1), 1 - self.beta_1, out=t1)
        v += np.multiply(np.subtract(np.square(g, out=t1), v, out=t1), 1 - self.beta_2, out=t1)
        denominator = np.add(np.sqrt(v, out=t1), self.epsilon, out=t1)
        w -= np.divide(np.multiply(m, alpha, out=t2), denominator, out=t2)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


_REGISTRY = {cls.name: cls for cls in (SGD, RMSprop, Adam)}
NAMES = tuple(_REGISTRY)


def get(identifier, **kwargs):
    """Return an Optimizer for a name (with constructor kwargs), a config dict or an instance.

    Args:
        identifier: One of `NAMES`, a `get_config()` dict, or an `Optimizer` (returned as is).
        **kwargs: Constructor arguments (lr, momentum, ...), with a name or a dict.

    Returns:
        An `Optimizer`.
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        kwargs = {**identifier, **kwargs}
        identifier = kwargs.pop("name", None)
    if identifier not in _REGISTRY:
        raise ValueError(
            f"Unknown optimizer. Expected one of {sorted(_REGISTRY)}. Received: optimizer={identifier!r}"
        )
    return _REGISTRY[identifier](**kwargs)
