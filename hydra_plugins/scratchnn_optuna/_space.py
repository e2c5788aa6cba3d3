"""The search space: Hydra's override syntax -> Optuna distributions, as hydra-optuna-sweeper reads it.

    choice(a, b, c) or a,b,c        CategoricalDistribution([a, b, c])  (also shuffle(range(...)))
    range(1, 4)                     IntDistribution(1, 4): `stop` is INCLUDED, as in hydra-optuna-sweeper
    range(1, 4, step=2)             IntDistribution(1, 4, step=2); float bounds: FloatDistribution(step=...)
    interval(0.1, 1)                FloatDistribution(0.1, 1); int(interval(1, 9)): IntDistribution(1, 9)
    tag(log, interval(1e-3, 0.3))   the same with log=True
    anything else (16, relu, ...)   fixed: passed to every trial unchanged
"""

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Transformer
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution


def parse_space(lines):
    """`key=value` lines -> ({key: distribution}, {key: fixed override line}); a later key replaces an earlier one."""
    space, fixed = {}, {}
    for override in OverridesParser.create().parse_overrides(list(lines)):
        key = override.get_key_element()
        space.pop(key, None)
        fixed.pop(key, None)
        if override.is_sweep_override():
            space[key] = distribution(override)
        else:
            fixed[key] = override.input_line
    return space, fixed


def distribution(override):
    """The Optuna distribution of one sweep override (choice, range or interval)."""
    sweep = override.value()
    log = "log" in getattr(sweep, "tags", ())  # glob(...) has no tags, and no distribution
    if override.is_choice_sweep() or (override.is_range_sweep() and sweep.shuffle):
        return CategoricalDistribution(choices(override))
    if override.is_range_sweep():
        return numeric(sweep.start, sweep.stop, log=log, step=sweep.step)
    if override.is_interval_sweep():
        return numeric(sweep.start, sweep.end, log=log)
    raise ValueError(f"{override.input_line!r}: Optuna samples only choice(...), range(...) and interval(...)")


def choices(override):
    """The values of a choice sweep: numbers and bools as they are, anything else (str, list, dict) as
    the override text Hydra's basic sweeper would write (relu, b\\ c, [1,2]), so it reads back the same."""
    return [value if isinstance(value, (int, float, bool)) else Transformer.str(value)
            for value in override.sweep_iterator(transformer=Transformer.identity)]


def numeric(low, high, *, log=False, step=None):
    """IntDistribution when both bounds (and the step) are ints, else FloatDistribution."""
    if all(isinstance(x, int) for x in (low, high, step or 1)):
        return IntDistribution(low, high, log=log, step=step or 1)
    return FloatDistribution(low, high, log=log, step=step)


def format_value(value):
    """A sampled value as Hydra reads it on the command line (None -> null, True -> true)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def trial_overrides(params, fixed):
    """One trial's overrides: its sampled `key=value` pairs, then the fixed overrides unchanged."""
    return [f"{key}={format_value(value)}" for key, value in params.items()] + list(fixed.values())
