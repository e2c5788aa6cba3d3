"""Pruning in the Optuna search: each epoch's val acc reported to the trial, a lagging trial pruned and
recorded as pruned in MLflow and Optuna, counted apart, and counted as done by a relaunch."""

import pickle

import mlflow
import optuna
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.utils import JobReturn, JobStatus
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from compare import tables
from compare.runs import load_pairs, samples, search
from experiments import claims, names, pruning
from experiments.config import CONF_DIR, register_configs
from hydra_plugins.scratchnn_optuna import _storage, _study
from hydra_plugins.scratchnn_optuna.optuna_sweeper import Settings, check_settings
from test_search import STUDY, run_search, trials

LR = CategoricalDistribution([0.1, 1e-05])
SEARCH = ["hydra.sweeper.n_trials=6", "optimizer.lr=choice(0.1,0.00001)", "model.width=16", "train.epochs=2"]


def seeded_study(storage, value=0.95):
    """A study holding 5 complete trials (the median pruner's startup trials) with `value` after each of
    2 epochs, and a 6th enqueued whose lr is too small to learn anything in an epoch."""
    study = optuna.create_study(study_name=STUDY, storage=storage, direction="maximize")
    for _ in range(5):
        study.add_trial(optuna.trial.create_trial(params={"optimizer.lr": 0.1}, distributions={"optimizer.lr": LR},
                                                  value=value, intermediate_values={0: value, 1: value}))
    study.enqueue_trial({"optimizer.lr": 1e-05})
    return study


def runs_of_search(uri):
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("sweep-search")
    return client, experiment.experiment_id, client.search_runs([experiment.experiment_id])


def test_a_lagging_trial_is_pruned_recorded_as_pruned_and_done_on_resume(tmp_path):
    storage, uri = f"sqlite:///{tmp_path / 'optuna.db'}", f"sqlite:///{tmp_path / 'm.db'}"  # the default storage
    seeded_study(storage)
    output = run_search(tmp_path, "out1", *SEARCH)  # +sweep=search: the median pruner by default

    pruned = trials(storage)[5]
    assert pruned.state == TrialState.PRUNED and list(pruned.intermediate_values) == [0]
    assert pruned.intermediate_values[0] < 0.95
    assert "Optuna search: 5 complete, 1 pruned, 0 failed" in output  # the study: its 5 seeded trials too
    assert "sweep: 0 finished, 0 failed, 0 skipped, 1 pruned in" in output

    client, experiment_id, runs = runs_of_search(uri)
    assert sorted(r.info.status for r in runs) == ["FINISHED", "FINISHED"]  # the parent and its scratchnn child
    for run in runs:
        assert run.data.tags[names.PRUNED_EPOCH] == "1"
        assert run.data.tags[names.PRUNED].startswith("at epoch 1 of 2 by the median pruner of trial 5")
        assert names.FAILURE_REASON not in run.data.tags
    child = next(r for r in runs if r.data.tags.get(names.FRAMEWORK) == "scratchnn")
    assert names.TEST_ACC not in child.data.metrics  # not trained to the end...
    history = client.get_metric_history(child.info.run_id, names.EPOCH_METRICS["val_accuracy"])
    assert [(m.step, m.value) for m in history] == [(0, pytest.approx(pruned.intermediate_values[0]))]
    parent = next(r for r in runs if r.data.tags.get(names.ROLE) == names.ROLE_PARENT)
    assert claims.complete_parent(client, experiment_id, parent.data.tags[names.CONFIG_HASH]) is None  # ...not done
    assert parent.data.params["model.width"] == "16" and not [p for p in parent.data.params if p.startswith("search.")]

    pairs = load_pairs(search("sweep-search", uri))  # the report counts it apart, and never as a sample
    assert pairs["state"].tolist() == ["pruned"] and not samples(pairs).any()
    assert tables.summary(pairs, pairs.iloc[:0], {})["runs"]["pruned"] == 1 and tables.unfinished(pairs).empty

    again = run_search(tmp_path, "out2", *SEARCH)
    assert "0 of 6 trials to run" in again and "Launching" not in again  # the pruned trial counts as done
    assert len(trials(storage)) == 6


def test_without_a_pruner_every_epoch_is_reported_and_the_trial_completes(tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    seeded_study(storage)
    output = run_search(tmp_path, "out", *SEARCH, "hydra.sweeper.pruner=none")
    last = trials(storage)[5]
    assert last.state == TrialState.COMPLETE and sorted(last.intermediate_values) == [0, 1]
    assert last.value == pytest.approx(last.intermediate_values[1])  # the objective: the last epoch's val acc
    assert "Optuna search: 6 complete, 0 pruned, 0 failed" in output and "pruned in" not in output


def test_search_preset_prunes_with_the_median_pruner_by_default():
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["+sweep=search"], return_hydra_config=True)
        plain = compose("config", overrides=["hydra/sweeper=optuna"], return_hydra_config=True)
    assert cfg.hydra.sweeper.pruner == "median" and plain.hydra.sweeper.pruner == "none"
    assert cfg.search.trial is None  # set per trial by the sweeper, never by the preset


def test_pruner_names_and_bad_settings():
    assert isinstance(_storage.make_pruner("median"), optuna.pruners.MedianPruner)
    assert isinstance(_storage.make_pruner("hyperband"), optuna.pruners.HyperbandPruner)
    assert isinstance(_storage.make_pruner("none"), optuna.pruners.NopPruner)
    with pytest.raises(ValueError, match="Received: 'mean'"):
        _storage.make_pruner("mean")

    def settings(**changes):
        base = dict(study_name="s", storage="sqlite:///x.db", direction="maximize", seed=0, pruner="median",
                    heartbeat_interval=10, grace_period=30, max_retry=3)
        return Settings(**{**base, **changes})

    check_settings(settings(), 1, 1)
    for changes, message in ((dict(pruner="mean"), "pruner must be one of"),
                             (dict(storage=None), r"Received: hydra.sweeper.storage=null"),
                             (dict(grace_period=0), r"grace_period must be >= 1 .*Received: 0")):
        with pytest.raises(ValueError, match=message):
            check_settings(settings(**changes), 1, 1)
    check_settings(settings(storage=None, pruner="none"), 1, 1)  # in memory, without pruning: fine


def test_a_pruned_job_becomes_a_pruned_trial_and_survives_pickling():
    exc = pickle.loads(pickle.dumps(pruning.Pruned("at epoch 1 of 3", {names.PRUNED: "at epoch 1 of 3"})))
    assert str(exc) == "at epoch 1 of 3" and exc.run_tags == {names.PRUNED: "at epoch 1 of 3"}
    value, why = _study.objective(JobReturn(status=JobStatus.COMPLETED, _return_value=exc))
    assert value is exc and why is None
    value, why = _study.objective(JobReturn(status=JobStatus.FAILED, _return_value=pruning.Pruned("raised")))
    assert value is None and why == "raised Pruned: raised"  # only a returned Pruned is a pruned trial


def test_the_logged_config_leaves_out_where_the_trial_reports():
    container = {"model": {"width": 16}, "search": {"storage": "postgresql://mlflow:secret@127.0.0.1/optuna"}}
    assert pruning.loggable(container) == {"model": {"width": 16}}


def test_each_trial_number_gets_its_own_sampler_seed():
    space = {"x": optuna.distributions.FloatDistribution(0, 1)}
    draws = [_study.sampler_for(0, n).sample_independent(optuna.create_study(), None, "x", space["x"])
             for n in (0, 0, 1)]
    assert draws[0] == draws[1] != draws[2]  # one number: one draw; the next number (another search's): another


def test_retried_trials_do_not_count_but_their_retries_do():
    study = optuna.create_study()
    dist = {"x": CategoricalDistribution([1, 2])}
    for state in (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED):
        study.add_trial(optuna.trial.create_trial(state=state, params={"x": 1}, distributions=dist,
                                                  value=0.5 if state == TrialState.COMPLETE else None))
    study.add_trial(optuna.trial.create_trial(state=TrialState.RUNNING, params={"x": 2}, distributions=dist,
                                              system_attrs={"failed_trial": 1, "retry_history": [1]}))
    assert [t.number for t in _study.counted(study.get_trials())] == [0, 2, 3]
