"""One table of bounds (scratchnn/bounds.py), read by the library's constructors and by the harness's
early validation: at each bound's edges, a value is accepted or refused by both alike, and the
names users type for a data set (fashion-mnist, fashion_mnist, mnist) are accepted by both."""

import math

import pytest

from experiments.config import ConfigError, normalize, validate
from scratchnn import bounds, datasets, layers, optimizers

TINY = 1e-9
UNIT_EDGES = [(-TINY, False), (0.0, True), (0.5, True), (1 - TINY, True), (1.0, False), (1.5, False),
              (math.nan, False), (math.inf, False)]
POSITIVE_EDGES = [(-1.0, False), (0.0, False), (TINY, True), (1e300, True), (math.inf, False), (math.nan, False)]
NON_NEGATIVE_EDGES = [(-TINY, False), (0.0, True), (TINY, True), (1e300, True), (math.inf, False), (math.nan, False)]

# (optimizer group, config key, the library's constructor taking the value, edges with the expected answer)
CASES = [
    ("sgd", "optimizer.lr", lambda v: optimizers.SGD(lr=v), POSITIVE_EDGES),
    ("adam", "optimizer.lr", lambda v: optimizers.Adam(lr=v), POSITIVE_EDGES),
    ("momentum", "optimizer.momentum", lambda v: optimizers.SGD(momentum=v), UNIT_EDGES),
    ("rmsprop", "optimizer.momentum", lambda v: optimizers.RMSprop(momentum=v), UNIT_EDGES),
    ("rmsprop", "optimizer.rho", lambda v: optimizers.RMSprop(rho=v), UNIT_EDGES),
    ("rmsprop", "optimizer.epsilon", lambda v: optimizers.RMSprop(epsilon=v), POSITIVE_EDGES),
    ("adam", "optimizer.beta_1", lambda v: optimizers.Adam(beta_1=v), UNIT_EDGES),
    ("adam", "optimizer.beta_2", lambda v: optimizers.Adam(beta_2=v), UNIT_EDGES),
    ("adam", "optimizer.epsilon", lambda v: optimizers.Adam(epsilon=v), POSITIVE_EDGES),
    ("sgd", "model.dropout", lambda v: layers.Dropout(v), UNIT_EDGES),
    ("sgd", "model.l2", lambda v: layers.Dense(4, l2=v), NON_NEGATIVE_EDGES),
]
PARAMS = [pytest.param(group, key, build, value, expected, id=f"{key}[{group}]={value!r}")
          for group, key, build, edges in CASES for value, expected in edges]


def config_says(make_cfg, group, key, value):
    """None if the early validation accepts `key=value`, else its message."""
    cfg = make_cfg(f"optimizer={group}", f"{key}={value!r}")
    try:
        validate(cfg)
    except ConfigError as exc:
        return str(exc)
    return None


def library_says(build, value):
    try:
        build(value)
    except ValueError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("group,key,build,value,expected", PARAMS)
def test_config_and_library_accept_and_refuse_each_edge_alike(make_cfg, group, key, build, value, expected):
    from_config, from_library = config_says(make_cfg, group, key, value), library_says(build, value)
    assert (from_config is None) == (from_library is None) == expected, (from_config, from_library)
    if not expected:  # both name the value, each by its own name for it
        assert f"Received: {key}={value!r}" in from_config
        assert f"={value!r}" in from_library and "must be " in from_library


def test_momentum_one_is_refused_before_any_run_with_the_bound(make_cfg):
    message = config_says(make_cfg, "momentum", "optimizer.momentum", 1.0)
    assert message == "optimizer.momentum must be a number in [0, 1). Received: optimizer.momentum=1.0"
    with pytest.raises(ValueError, match=r"momentum must be a number in \[0, 1\)\. Received: momentum=1$"):
        optimizers.SGD(momentum=1)


def test_every_bound_of_the_table_is_checked_by_the_config_and_by_a_constructor():
    checked = {key.rsplit(".", 1)[-1].replace("dropout", "rate") for _, key, _, _ in CASES}
    assert checked == set(bounds.BOUNDS)


@pytest.mark.parametrize("value", [True, "0.5", None])
def test_a_value_that_is_not_a_number_is_refused_by_the_library(value):
    with pytest.raises(ValueError, match=f"Received: momentum={value!r}"):
        optimizers.SGD(momentum=value)


@pytest.mark.parametrize("typed,key", [("fashion-mnist", "fashion_mnist"), ("fashion_mnist", "fashion_mnist"),
                                       ("mnist", "mnist")])
def test_both_spellings_of_fashion_mnist_are_one_data_set(make_cfg, typed, key):
    cfg = normalize(make_cfg(f"data.name={typed}"))
    validate(cfg)
    assert cfg.data.name == key == datasets.canonical(typed)
    assert datasets.locate(typed, cfg.data.dir).name == datasets.DATASETS[key]["folder"]


def test_a_bad_data_name_lists_the_choices(make_cfg):
    cfg = normalize(make_cfg("data.name=fashion"))
    with pytest.raises(ConfigError) as caught:
        validate(cfg)
    assert str(caught.value) == ("data.name must be one of ['fashion-mnist', 'fashion_mnist', 'mnist']. "
                                 "Received: data.name='fashion'")
    with pytest.raises(ValueError, match=r"Expected one of \['fashion-mnist', 'fashion_mnist', 'mnist'\]"):
        datasets.canonical("fashion")
