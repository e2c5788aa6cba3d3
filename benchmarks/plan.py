"""The benchmark's job plan: the configs, the columns (framework variants), the harness config of
each, how many steps a fit times, and the list of measurements in the order they run."""

import argparse
import math

from benchmarks import floor, tables

DEFAULT = (1, 128, 32)  # depth, width, batch size of conf/config.yaml
# the configs of issue 15's first table, for before/after comparisons
REFERENCE_CONFIGS = [(1, 128, 32), (2, 256, 128), (3, 512, 32), (2, 1024, 256)]
GRID = [(d, w, b) for d in (1, 3) for w in (128, 1024) for b in (32, 512)]
QUICK = [(1, 128, 32), (2, 256, 128), (3, 512, 32)]
QUICK_STEPS, QUICK_REPEATS = 256, 2
KERAS_SETTINGS = [(jit, spe) for jit in (False, True) for spe in (1, 8, 64, 256)]

BASE = ["data.val_size=0", "train.epochs=1", "train.verbose=false"]
COLUMNS = {  # column -> (driver module, overrides): Keras as the harness runs it, and out of the box
    "scratchnn": ("scratchnn", []), "keras": ("keras", []), "keras-default": ("keras", ["keras=default"]),
    "torch": ("torch", []), "gemm": ("gemm", []),
}


def grid(quick=False):
    """The configs (depth, width, batch size): depth {1, 3} x width {128, 1024} x batch {32, 512},
    plus issue 15's reference configs (11 in all); --quick: three of them."""
    if quick:
        return list(QUICK)
    return GRID + [c for c in REFERENCE_CONFIGS if c not in GRID]


def parse_configs(text):
    """'1x128x32,2x256x128' -> [(1, 128, 32), (2, 256, 128)] (depth x width x batch size)."""
    configs = []
    for part in text.split(","):
        d, w, b = (int(v) for v in part.lower().split("x"))
        configs.append((d, w, b))
    return configs


def parse_threads(text):
    values = sorted({int(v) for v in text.split(",")})
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError(f"thread counts must be >= 1. Received: {text!r}")
    return values


def steps_for(depth, width, M, *, n_train, flop_budget, steps=None):
    """Steps timed per fit: `steps` if given; else the whole epoch, unless its matrix products
    exceed flop_budget, then the fewest multiple of 64 batches that reach the budget."""
    S = math.ceil(n_train / M)
    if steps:
        return min(steps, S)
    per_step = floor.flops_per_step(depth, width, M)
    if per_step * S <= flop_budget:
        return S
    return min(S, 64 * math.ceil(flop_budget / per_step / 64))


def harness_config(overrides):
    """conf/config.yaml composed with `overrides`, as a plain dict (what experiments.train would run)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from experiments.config import CONF_DIR, register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)


def variants(frameworks, keras_settings=False):
    """(column name, driver module, extra overrides) of every column measured."""
    if keras_settings:
        return [(tables.setting_name(j, s), "keras", [f"keras.jit_compile={str(j).lower()}",
                                                        f"keras.steps_per_execution={s}"]) for j, s in KERAS_SETTINGS]
    return [(fw, *COLUMNS[fw]) for fw in frameworks]


def default_frameworks():
    """Every framework the harness can run here: experiments.names.FRAMEWORKS, Keras also out of the
    box, those whose package is installed; and the GEMM floor."""
    from experiments import frameworks, names

    out = []
    for fw in names.FRAMEWORKS:
        if frameworks.missing(fw) is None:
            out.append(fw)
            if fw == "keras":
                out.append("keras-default")
    return out + ["gemm"]


def make_jobs(configs, thread_counts, columns, *, repeats, flop_budget, n_train, steps=None):
    """Every measurement, in the order they run: thread count, then config, then framework."""
    jobs = []
    for threads in thread_counts:
        for depth, width, M in configs:
            k = steps_for(depth, width, M, n_train=n_train, flop_budget=flop_budget, steps=steps)
            for name, module, extra in columns:
                overrides = BASE + [f"model.depth={depth}", f"model.width={width}", f"train.batch_size={M}",
                                    f"train.threads={threads}"] + extra
                jobs.append({"framework": name, "module": module, "threads": threads, "depth": depth,
                             "width": width, "batch_size": M, "steps": k, "repeats": repeats,
                             "overrides": overrides})
    return jobs
