"""What the Optuna search optimises: the value it records for a trial is the objective the trial's
parent run logged (and the framework's own last validation accuracy), and an objective the run
cannot produce is refused naming it."""

import optuna
import pytest
from omegaconf import OmegaConf
from optuna.trial import TrialState

from experiments import names
from experiments.config import ConfigError, validate_objective
from harness import runs
from test_search import STUDY, run_search


@pytest.mark.slow
@pytest.mark.e2e
def test_the_value_optuna_records_is_the_objective_the_parent_run_logged(tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name=STUDY, storage=storage, direction="maximize")
    for width in (16, 24):  # two known trials, one parent run each
        study.enqueue_trial({"model.width": width})
    run_search(tmp_path, "out", "hydra.sweeper.n_trials=2", "model.width=range(8,32)")
    trials = optuna.load_study(study_name=STUDY, storage=storage).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    df = runs(f"sqlite:///{tmp_path / 'm.db'}", "sweep-search")
    objective = f"metrics.{names.of('scratchnn', names.VAL_ACC)}"  # the default objective, scratchnn/val_acc
    for trial in trials:
        width = str(trial.params["model.width"])
        [parent] = df[(df["tags.role"] == "parent") & (df["params.model.width"] == width)].to_dict("records")
        [child] = df[df["tags.mlflow.parentRunId"] == parent["run_id"]].to_dict("records")
        assert trial.value == parent[objective] == child[f"metrics.{names.EPOCH_METRICS['val_accuracy']}"]
        assert 0 < trial.value < 1


def config(objective, frameworks=("scratchnn", "keras"), val_size=500):
    return OmegaConf.create({"objective": objective, "frameworks": list(frameworks), "data": {"val_size": val_size}})


@pytest.mark.parametrize("cfg,message", [
    (config("torch/val_acc"), "for a framework in ['scratchnn', 'keras']. Received: objective='torch/val_acc'"),
    (config("keras/train_acc"), "Received: objective='keras/train_acc'"),
    (config("scratchnn"), "Received: objective='scratchnn'"),
    (config("scratchnn/val_acc", val_size=0), "objective 'scratchnn/val_acc' needs a validation set. "
                                              "Received: data.val_size=0"),
])
def test_an_objective_the_run_cannot_produce_is_refused_naming_it(cfg, message):
    with pytest.raises(ConfigError) as caught:
        validate_objective(cfg)
    assert message in str(caught.value)


@pytest.mark.parametrize("objective,val_size", [("scratchnn/val_acc", 500), ("keras/test/acc", 0)])
def test_an_objective_the_run_produces_is_accepted(objective, val_size):
    assert validate_objective(config(objective, val_size=val_size)) is None
