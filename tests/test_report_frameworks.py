"""Every framework present in the report: three frameworks, subsets, a framework that failed alone,
Keras execution settings, and several experiments in one report (synthetic sqlite stores)."""

import mlflow
import pytest

from compare import display, report, tables
from compare.runs import config_columns, frameworks, load_pairs, search
from experiments import names
from stores import DIVERGED, add_pair, done, empty_store, new_experiment, params

KERAS = {"keras.jit_compile": "True", "keras.steps_per_execution": 64}


def trio(client, experiment):
    """A (width 32): three seeds of three frameworks, torch diverged in the third; B (width 64): scratchnn
    and torch only."""
    for seed, (k_acc, t_acc) in enumerate([(0.90, 0.91), (0.91, 0.90), (0.92, None)]):
        torch = done(t_acc, 2.0) if t_acc else ("FAILED", {names.FAILURE_REASON: DIVERGED})
        add_pair(client, experiment, {**params(seed=seed), **KERAS},
                 {"scratchnn": done(0.91, 1.0), "keras": done(k_acc, 4.0), "torch": torch},
                 "FINISHED" if t_acc else "FAILED", config_id="A", frameworks="scratchnn,keras,torch",
                 **({} if t_acc else {names.FAILED_FRAMEWORKS: "torch"}))
    add_pair(client, experiment, params(width=64), {"scratchnn": done(0.95, 1.0), "torch": done(0.94, 3.0)},
             config_id="B", frameworks="scratchnn,torch")


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("frameworks")
    uri = empty_store(root)
    trio(*new_experiment(uri, "trio", root))
    client, pair = new_experiment(uri, "pair", root)
    add_pair(client, pair, params(), {"scratchnn": done(0.90, 1.0), "keras": done(0.89, 2.0)}, config_id="A")
    client, tuned = new_experiment(uri, "keras-settings", root)
    for steps, config_id in ((1, "default"), (64, "tuned")):
        add_pair(client, tuned, {**params(), **KERAS, "keras.steps_per_execution": steps},
                 {"scratchnn": done(0.90, 1.0), "keras": done(0.89, 2.0)}, config_id=config_id)
    return uri, root


def test_three_frameworks_each_get_columns_and_comparisons(stores):
    uri, root = stores
    r = report.build(["trio"], uri, root / "trio")
    assert frameworks(r.pairs) == list(names.FRAMEWORKS) and r.columns == ["width"]
    rows = r.comparisons.set_index(["config_id", "vs"])
    # seed 2's parent FAILED for torch alone: still a scratchnn-keras sample; B never asked for keras
    assert rows["n"].to_dict() == {("A", "keras"): 3, ("A", "torch"): 2, ("B", "torch"): 1}
    assert rows.loc[("A", "keras"), "delta_pp"] == pytest.approx(0.0) and rows.loc[("A", "torch"), "time_ratio"] == 0.5
    shown = display.per_config(r.table, r.columns, frameworks(r.pairs))
    assert shown.columns.tolist() == ["width", "seeds", "scratchnn acc %", "scratchnn fit s", "keras acc %",
                                      "keras fit s", "torch acc %", "torch fit s"]
    assert shown["keras acc %"].tolist() == ["91.00 ± 1.00", "not run"] and shown["torch acc %"][1] == "94.00"
    lines = report.summary(r)
    assert (lines[0].startswith("scratchnn − keras over 1 config: ")
            and lines[1].startswith("time ratio scratchnn/keras"))
    assert (lines[3].startswith("scratchnn − torch over 2 configs: ")
            and lines[4].startswith("time ratio scratchnn/torch"))
    assert "scratchnn vs keras per config: 0 equivalent" in lines[6]
    assert any("failed runs: scratchnn 0, keras 0, torch 1" in line for line in lines)
    assert "keras execution: jit_compile=True, steps_per_execution=64" in lines
    report.write(r, root / "trio", {"md"})
    assert "| 32    | keras | 3     |" in (root / "trio" / "report.md").read_text()


def test_keras_execution_settings_that_vary_are_columns(stores):
    uri, root = stores
    pairs = load_pairs(search("keras-settings", uri))
    assert config_columns(pairs) == ["keras.steps_per_execution"]
    shown = display.verdicts(report.verdicts.comparisons(pairs), tables.per_config(pairs), config_columns(pairs))
    assert shown["keras.steps_per_execution"].tolist() == ["1", "64"]


def test_several_experiments_in_one_report(stores, tmp_path, capsys):
    uri, root = stores
    out = tmp_path / "reports"
    assert report.main(["--experiment", "trio", "--experiment", "pair", "--tracking-uri", uri], reports_root=out) == 0
    md = (out / "trio+pair" / "report.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| experiment"))
    assert [c.strip() for c in header.strip("|").split("|")][:3] == ["experiment", "width", "vs"]
    assert "| pair       | 32    | keras |" in md and "| trio       | 64    | torch |" in md
    assert md.index("| trio ") < md.index("| pair ")  # in the order asked for
    found = mlflow.MlflowClient(uri).get_experiment_by_name("trio+pair-reports")
    assert found is not None and len(mlflow.search_runs([found.experiment_id])) == 1
    out_text = capsys.readouterr().out
    assert "training runs of trio in the MLflow UI" in out_text and "training runs of pair in the MLflow UI" in out_text
