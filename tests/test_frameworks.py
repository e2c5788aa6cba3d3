"""The framework plug-ins: parity of every framework with scratchnn step by step, the PyTorch twin
end to end, Keras's execution settings and its divergence guard, and the registry."""

import re
from types import SimpleNamespace

import numpy as np
import pytest

from experiments import frameworks, names, parity
from experiments.config import register_configs
from experiments.runner import ExperimentFailed, build, prepare_data, seeds_of, train_config
from experiments.summary import summary_line
from harness import runs_of

register_configs()
pytestmark = pytest.mark.usefixtures("quiet_warnings")
ALL = "frameworks=[scratchnn,keras,torch]"


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam", "rmsprop"])
def test_every_framework_takes_scratchnns_steps(make_cfg, optimizer):
    """Same initial weights, same 100 batches: per-step losses agree to 1e-5 (relative)."""
    cfg = make_cfg(ALL, f"optimizer={optimizer}", "model.l2=0.0001", "parity=true")
    seeds = seeds_of(cfg)
    job = SimpleNamespace(cfg=cfg, data=prepare_data(cfg, seeds["split"]), seeds=seeds)
    for fw in cfg.frameworks:
        frameworks.get(fw).configure(cfg)
    weights = build(cfg, "scratchnn", seeds["scratchnn"]).get_weights()
    trajectories = parity.losses(job, lambda fw: build(cfg, fw, seeds["warmup"]), weights)
    result = parity.compare(trajectories)
    print(optimizer, {fw: f"{dev:.2e}" for fw, (dev, _) in result.items()})
    assert set(result) == {"keras", "torch"}
    for fw, (deviation, first_over) in result.items():
        assert len(trajectories[fw]) == 100 and trajectories[fw][-1] < trajectories[fw][0]
        assert deviation < parity.PARITY_BOUND and first_over is None, fw


def test_parity_flags_the_first_step_that_parts():
    ours = np.array([2.0, 1.5, 1.0, 0.9])
    result = parity.compare({"scratchnn": ours, "torch": ours * [1, 1, 1.001, 1]})
    assert result["torch"][1] == 3 and result["torch"][0] == pytest.approx(0.001 / 1.001)


def test_three_frameworks_log_one_parent_three_children_and_print_all(make_cfg, capsys):
    cfg = make_cfg(ALL, "parity=true", "parity_steps=20", "train.verbose=true")
    metrics = train_config(cfg, name="trio")
    out = capsys.readouterr().out.splitlines() + [summary_line(metrics)]
    assert [l.split(":")[0] for l in out if l.startswith("parity")] == ["parity scratchnn vs keras",
                                                                          "parity scratchnn vs torch"]
    assert all(l.endswith("(bound 1e-05): pass") for l in out if l.startswith("parity"))
    assert [l.split()[0] for l in out if " epoch 1/1: " in l] == ["scratchnn", "keras", "torch"]
    summary = out[-1]
    for fw in ("scratchnn", "keras", "torch"):
        assert f"{fw} test acc {metrics[f'{fw}/test/acc']:.2%}" in summary
    assert "vs torch: delta" in summary and f"time ratio {metrics['vs_torch/time_ratio']:.2f}" in summary
    runs = runs_of(cfg)
    assert len(runs) == 4 and set(runs.status) == {"FINISHED"}
    torch_run = runs[runs["tags.framework"] == "torch"].iloc[0]
    parent = runs[runs["tags.role"] == "parent"].iloc[0]
    assert parent["metrics.parity/torch/max_rel_loss_dev"] < 1e-5 and parent["tags.torch_threads"] == "1"
    assert parent["metrics.torch/test/acc"] == torch_run["metrics.test/acc"] > 0.7
    import mlflow

    client = mlflow.MlflowClient(cfg.mlflow.tracking_uri)
    assert {f.path for f in client.list_artifacts(torch_run.run_id)} == {"predictions.csv", "confusion_matrix.csv",
                                                                        "model.pt"}
    C = np.loadtxt(client.download_artifacts(torch_run.run_id, "confusion_matrix.csv"), delimiter=",")
    assert np.trace(C) / C.sum() == pytest.approx(torch_run["metrics.test/acc"], abs=1e-6)
    assert len(client.get_metric_history(torch_run.run_id, "val/acc")) == 1


def test_torch_twin_is_seeded_and_leaves_the_global_seed_alone(make_cfg):
    import torch

    cfg = make_cfg("frameworks=[torch]", "model.dropout=0.3")
    seeds = seeds_of(cfg)
    data = prepare_data(cfg, seeds["split"])
    state = torch.get_rng_state()
    histories = []
    for _ in range(2):
        model = build(cfg, "torch", seeds_of(cfg)["torch"])
        histories.append(model.fit(data, np.random.default_rng(seeds["order"]), lambda *a: None)["loss"])
    assert histories[0] == histories[1] and np.isfinite(histories[0]).all()
    assert torch.equal(torch.get_rng_state(), state)


def test_keras_guard_sees_the_loss_once_per_execution(make_cfg):
    cfg = make_cfg("frameworks=[keras]", "optimizer.lr=50", "keras.steps_per_execution=8", "train.max_loss=5")
    with pytest.raises(ExperimentFailed, match="keras failed: TrainingDiverged"):
        train_config(cfg)
    child = runs_of(cfg).query("`tags.framework` == 'keras'").iloc[0]
    step = int(re.search(r"epoch 1, step (\d+)", child["tags.failure_reason"]).group(1))
    assert step % 8 == 0 and child["params.divergence_check_every"] == "8"


def test_the_out_of_the_box_keras_preset(make_cfg):
    cfg = make_cfg("keras=default")
    assert cfg.keras.jit_compile == "auto" and cfg.keras.steps_per_execution == 1
    assert make_cfg().keras.steps_per_execution > 1  # the harness default is the tuned one


def test_registry_names_each_framework_and_refuses_others():
    assert [frameworks.get(fw).name for fw in names.FRAMEWORKS] == list(names.FRAMEWORKS)
    with pytest.raises(ValueError, match=r"Received: framework='jax'"):
        frameworks.get("jax")


@pytest.mark.parametrize("dropout,checked", [(0.0, True), (0.2, False)])
def test_parity_auto_checks_every_config_that_can_match(make_cfg, dropout, checked):
    cfg = make_cfg("frameworks=[scratchnn,torch]", "parity=auto", "parity_steps=20", f"model.dropout={dropout}")
    metrics = train_config(cfg)
    parent = runs_of(cfg).query("`tags.role` == 'parent'").iloc[0]
    column = f"metrics.{names.parity('torch', names.PARITY_DEV)}"
    assert bool(column in parent and parent[column] == parent[column]) is checked
    if checked:
        assert parent[column] < parity.PARITY_BOUND and names.parity("torch", names.PARITY_STEP) not in metrics
