"""The hyperparameter bounds of the library: one table, read by the constructors that take these
values (the optimizers, `Dense(l2=...)`, `Dropout(rate)`) and by any caller that checks a value
before building anything (the harness's early config validation), so both accept the same values.
"""

import math
import numbers
from dataclasses import dataclass


@dataclass(frozen=True)
class Interval:
    """Real numbers from `low` to `high`; an end is included unless it is open (an infinite end is
    always open, so every accepted value is finite)."""

    low: float
    high: float
    low_open: bool = False
    high_open: bool = True

    def __contains__(self, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open or math.isinf(self.high) else value <= self.high
        return above and below and math.isfinite(value)

    def __str__(self):
        if math.isinf(self.high):
            return f"a finite number {'>' if self.low_open else '>='} {self.low:g}"
        return f"a number in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


UNIT = Interval(0.0, 1.0)  # [0, 1): a decay, a momentum, a dropout rate
BOUNDS = {
    "lr": Interval(0.0, math.inf, low_open=True),
    "momentum": UNIT,  # 1 would never forget a gradient: the velocity does not decay
    "rho": UNIT,
    "beta_1": UNIT,
    "beta_2": UNIT,
    "epsilon": Interval(0.0, math.inf, low_open=True),
    "l2": Interval(0.0, math.inf),
    "rate": UNIT,  # Dropout
}


def problem(name, value):
    """Why `value` is not a valid `name` ("must be a number in [0, 1)"), or None if it is.

    Args:
        name: A key of `BOUNDS`.
        value: The value to check.
    """
    interval = BOUNDS[name]
    return None if value in interval else f"must be {interval}"


def check(name, value):
    """Raise ValueError naming `name` and the value unless `value` is within `BOUNDS[name]`.

    Args:
        name: A key of `BOUNDS`, also the argument's name in the message.
        value: The value to check.
    """
    why = problem(name, value)
    if why:
        raise ValueError(f"{name} {why}. Received: {name}={value!r}")
