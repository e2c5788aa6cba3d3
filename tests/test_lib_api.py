"""The public API: keyword-only arguments past the first few. That every public callable has a docstring
with a Keras-style `Args:` section is ruff's pydocstyle check (pyproject.toml [tool.ruff]), not a test."""

import importlib
import inspect

import numpy as np
import pytest

import scratchnn as sn

MODULES = ["scratchnn", "scratchnn.network", "scratchnn.layers", "scratchnn.activations", "scratchnn.losses",
           "scratchnn.optimizers", "scratchnn.initializers", "scratchnn.datasets", "scratchnn.preprocessing",
           "scratchnn.idx", "scratchnn.gradcheck", "scratchnn.inputs", "scratchnn.saving",
           "scratchnn.training"]


def public_callables():
    """(qualified name, object, parameters to document) for every public function, class and method."""
    seen = {}
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module_name:
                continue
            if inspect.isfunction(obj):
                seen[f"{module_name}.{name}"] = obj
            elif inspect.isclass(obj):
                seen[f"{module_name}.{name}"] = obj
                for attr, member in vars(obj).items():
                    if not attr.startswith("_") and inspect.isfunction(member):
                        seen[f"{module_name}.{name}.{attr}"] = member
                    elif isinstance(member, classmethod):
                        seen[f"{module_name}.{name}.{attr}"] = member.__func__
    for qualname, obj in seen.items():
        target = obj.__init__ if inspect.isclass(obj) else obj
        if inspect.isclass(obj) and "__init__" not in vars(obj):
            target = None  # inherits its constructor; documented where that is defined
        params = [] if target in (None, object.__init__) else [
            p.name for p in inspect.signature(target).parameters.values()
            if p.name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        yield qualname, obj, params


CALLABLES = sorted(public_callables(), key=lambda item: item[0])


def test_the_discovery_sees_the_main_api():
    names = {c[0] for c in CALLABLES}
    assert {"scratchnn.mlp", "scratchnn.network.Network", "scratchnn.network.Network.fit",
            "scratchnn.layers.Dense", "scratchnn.optimizers.SGD", "scratchnn.network.Network.load"} <= names


def test_more_than_four_parameters_means_the_rest_are_keyword_only():
    for qualname, obj, _ in CALLABLES:
        target = obj.__init__ if inspect.isclass(obj) else obj
        if inspect.isclass(obj) and "__init__" not in vars(obj):
            continue
        positional = [p for p in inspect.signature(target).parameters.values()
                      if p.name not in ("self", "cls") and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        assert len(positional) <= 4, f"{qualname} takes {len(positional)} positional parameters"


def test_mlp_and_fit_reject_the_old_positional_calls():
    X, y = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32), np.arange(8) % 2
    with pytest.raises(TypeError):
        sn.mlp(4, 1, 3, 2, "tanh")
    with pytest.raises(TypeError):
        sn.Dense(3, "tanh", "he_normal")
    net = sn.mlp(4, 1, 3, 2, activation="tanh", output_activation="softmax", kernel_initializer="he_normal",
                 dropout=0.1, l2=0.01, optimizer=sn.SGD(lr=0.1), rng=np.random.default_rng(0))
    with pytest.raises(TypeError):
        net.fit(X, y, 1, 4)
    history = net.fit(X, y, epochs=2, batch_size=4, validation_data=(X, y), shuffle=False, verbose=False)
    assert net.optimizer.iterations == 4 and len(history["val_loss"]) == 2
    assert [type(layer).__name__ for layer in net.layers] == ["Dense", "Dropout", "Dense"]
    assert net.layers[0].activation.name == "tanh" and net.layers[0].l2 == 0.01
