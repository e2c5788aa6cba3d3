"""The parity check in the report (synthetic sqlite stores): a column beside each framework's verdict
when some run was checked, a flag and a summary line for a config beyond the bound, nothing without
parity metrics."""

import math

import numpy as np
import pandas as pd
import pytest
from mlflow.entities import Metric

from compare import display, report, runs
from experiments import names
from stores import add_pair, done, params, tmp_store

STEPS = 20  # parity_steps, a top-level param of every run


def checked(client, parent_id, **by_framework):
    """Log a parent's parity metrics: {framework: deviation or (deviation, first step over the bound)}."""
    metrics = []
    for fw, value in by_framework.items():
        dev, step = value if isinstance(value, tuple) else (value, None)
        metrics.append(Metric(names.parity(fw, names.PARITY_DEV), dev, 0, 0))
        metrics += [Metric(names.parity(fw, names.PARITY_STEP), step, 0, 0)] if step is not None else []
    client.log_batch(parent_id, metrics=metrics)


def pair(client, experiment, run_params, fws=("scratchnn", "keras"), **tags):
    children = {fw: done(0.9, 1.0 if fw == names.REFERENCE else 2.0) for fw in fws}
    return add_pair(client, experiment, {**run_params, runs.PARITY_STEPS: STEPS}, children, **tags)["parent"]


def built(tmp_path, name, fill, *argv):
    """The store `fill` makes, reported through the CLI (md, html, csv) and built again in memory."""
    uri, client, experiment = tmp_store(tmp_path, name)
    fill(client, experiment)
    out = tmp_path / "r"
    assert report.main(["--experiment", name, "--tracking-uri", uri, "--out", str(out), "--no-log", *argv]) == 0
    bound = float(argv[argv.index("--parity-bound") + 1]) if "--parity-bound" in argv else runs.PARITY_BOUND
    return report.build([name], uri, tmp_path / "b", parity_bound=bound), out


def md_table(md, first):
    """The Markdown table whose header starts with `first`, as a list of {column: cell}."""
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first} "))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    header, _, *body = [[c.strip() for c in line.strip("|").split("|")] for line in lines[start:end]]
    return [dict(zip(header, row)) for row in body]


def test_the_report_flags_exactly_what_the_runs_were_checked_to_part(tmp_path):
    """Deviations 10% either side of the bound: the writer's check (experiments.parity, which compare
    may not import) finds a step over the bound for one only, and the report flags that one only."""
    from experiments import parity

    within, beyond = 0.9e-5, 1.1e-5
    ours = np.array([2.0, 1.5, 1.0])
    written = parity.compare({"scratchnn": ours, "keras": ours / (1 + within), "torch": ours / (1 + beyond)})
    assert written["keras"][0] == pytest.approx(within) and written["keras"][1] is None
    assert written["torch"][0] == pytest.approx(beyond) and written["torch"][1] == 1

    def fill(client, experiment):
        parent = pair(client, experiment, params(), ("scratchnn", "keras", "torch"), config_id="A")
        checked(client, parent, **{fw: dev if step is None else (dev, step) for fw, (dev, step) in written.items()})

    r, _ = built(tmp_path, "edges", fill)
    assert r.parity.set_index("vs")["parity_flagged"].to_dict() == {"keras": False, "torch": True}


def test_within_the_bound_a_column_and_no_flag(tmp_path):
    def fill(client, experiment):
        for width, devs in ((32, (2e-7, 8.4e-7)), (64, (1e-7, 3e-7))):
            for seed, dev in enumerate(devs):
                checked(client, pair(client, experiment, params(width=width, seed=seed), config_id=f"w{width}"),
                        keras=dev)

    r, out = built(tmp_path, "within", fill)
    assert r.parity[["config_id", "parity_seeds", "parity_dev", "parity_flagged"]].values.tolist() == [
        ["w32", 2, 8.4e-7, False], ["w64", 2, 3e-7, False]]
    md = (out / "report.md").read_text()
    rows = md_table(md, "width")
    header = list(rows[0])
    assert header[header.index("verdict") + 1] == display.PARITY_COLUMN  # beside the verdict
    assert [(row["width"], row[display.PARITY_COLUMN]) for row in rows] == [("32", "8.4e-07"), ("64", "3.0e-07")]
    assert not any(display.PARITY_FLAG in cell for row in rows for cell in row.values()) and "- parity:" not in md
    assert (f"- parity scratchnn vs keras: 2 of 2 configs checked over {STEPS} steps from identical weights; largest "
            "relative loss deviation 8.4e-07 (bound 1e-05): all within the bound") in md
    html = (out / "report.html").read_text()
    assert "<th>verdict</th><th>parity dev</th>" in html and "<td class='num'>8.4e-07</td>" in html
    assert "class='flag'" not in html and "Parity (runs with parity=true or auto)" in html
    verdicts_csv = pd.read_csv(out / "verdicts.csv")
    assert verdicts_csv["parity_dev"].tolist() == [8.4e-7, 3e-7] and not verdicts_csv["parity_flagged"].any()
    assert pd.read_csv(out / "per_config.csv")["parity_dev_vs_keras"].tolist() == [8.4e-7, 3e-7]


def fill_beyond(client, experiment):
    """A (width 32): torch parts at step 4 on seed 1; B (dropout 0.2): not checked (parity=auto);
    C (width 128): torch's deviation NaN (a non-finite loss) from step 1."""
    fws = ("scratchnn", "keras", "torch")
    for seed, (keras, torch) in enumerate([(1e-7, 5e-6), (2e-7, (3.1e-3, 4))]):
        parent = pair(client, experiment, {**params(seed=seed), "model.dropout": 0.0}, fws, config_id="A")
        checked(client, parent, keras=keras, torch=torch)
    pair(client, experiment, {**params(width=64), "model.dropout": 0.2}, fws, config_id="B")
    parent = pair(client, experiment, {**params(width=128), "model.dropout": 0.0}, fws, config_id="C")
    checked(client, parent, keras=1e-7, torch=(math.nan, 1))


def test_beyond_the_bound_the_config_is_flagged_beside_that_frameworks_verdict(tmp_path):
    r, out = built(tmp_path, "beyond", fill_beyond)
    flagged = r.parity.set_index(["config_id", "vs"])["parity_flagged"].to_dict()
    assert flagged == {("A", "keras"): False, ("A", "torch"): True, ("C", "keras"): False, ("C", "torch"): True}
    md = (out / "report.md").read_text()
    cells = {(row["width"], row["vs"]): row[display.PARITY_COLUMN] for row in md_table(md, "width")}
    assert cells == {("32", "keras"): "2.0e-07", ("32", "torch"): "⚠ 3.1e-03 from step 4",
                     ("64", "keras"): "not checked", ("64", "torch"): "not checked",
                     ("128", "keras"): "1.0e-07", ("128", "torch"): "⚠ inf from step 1"}
    lines = report.summary(r)
    assert "parity scratchnn vs keras: 2 of 3 configs checked over 20 steps from identical weights; largest relative " \
           "loss deviation 2.0e-07 (bound 1e-05): all within the bound" in lines
    assert "parity scratchnn vs torch: 2 of 3 configs checked over 20 steps from identical weights; largest relative " \
           "loss deviation inf (bound 1e-05)" in lines
    assert ("parity: 2 config(s) where torch parts from scratchnn beyond 1e-05: width=32, dropout=0 (3.1e-03, "
            "from step 4); width=128, dropout=0 (inf, from step 1)") in lines
    assert not any(line.startswith("parity: ") and "keras" in line for line in lines)
    html = (out / "report.html").read_text()
    assert html.count("<td class='flag'>") == 2 and "<td class='flag'>⚠ 3.1e-03 from step 4</td>" in html
    verdicts_csv = pd.read_csv(out / "verdicts.csv").set_index(["config_id", "vs"])
    assert verdicts_csv.loc[("A", "torch"), ["parity_dev", "parity_step"]].tolist() == [3.1e-3, 4]
    assert verdicts_csv.loc[("A", "torch"), "parity_flagged"]
    assert pd.isna(verdicts_csv.loc[("B", "torch"), "parity_dev"])
    summary_csv = pd.read_csv(out / "summary.csv").set_index("vs")
    assert summary_csv.loc["torch", ["parity_configs_checked", "parity_configs_flagged"]].tolist() == [2, 2]
    assert summary_csv.loc["keras", ["parity_configs_flagged", "parity_dev_max"]].tolist() == [0, 2e-7]
    per_config = pd.read_csv(out / "per_config.csv").set_index("config_id")
    assert per_config.loc["A", "parity_dev_vs_torch"] == 3.1e-3
    assert per_config.loc["C", "parity_dev_vs_torch"] == math.inf


def test_the_bound_is_an_option(tmp_path, capsys):
    r, _ = built(tmp_path, "loose", fill_beyond, "--parity-bound", "1e-2")
    out = capsys.readouterr().out
    assert "parity: 1 config(s) where torch parts from scratchnn beyond 0.01: width=128, dropout=0 (inf, from step 1)" \
        in out  # 3.1e-3 is within 1e-2; a non-finite deviation never is
    assert r.parity["parity_flagged"].tolist() == [False, False, False, True]
    uri = f"sqlite:///{tmp_path / 'm.db'}"  # where a regressed check would go next: never the project's mlflow.db
    with pytest.raises(SystemExit) as exit_:
        report.main(["--experiment", "loose", "--tracking-uri", uri, "--out", str(tmp_path / "zero"),
                     "--parity-bound", "0"])
    assert exit_.value.code == 2  # argparse's usage error, before any store is opened
    assert "error: --parity-bound must be > 0. Received: --parity-bound=0.0" in capsys.readouterr().err
    assert not (tmp_path / "zero").exists()


def test_without_parity_metrics_no_column(tmp_path):
    def fill(client, experiment):
        for seed in (0, 1):
            pair(client, experiment, params(seed=seed), config_id="A")

    r, out = built(tmp_path, "unchecked", fill)
    assert r.parity.empty and r.summary["parity"] == {}
    assert r.pairs[runs.parity_dev("keras")].isna().all()  # NaN in the rows: not checked
    md, html = (out / "report.md").read_text(), (out / "report.html").read_text()
    assert "verdict" in md_table(md, "config")[0] and display.PARITY_COLUMN not in md_table(md, "config")[0]
    for text in (md, html):
        assert display.PARITY_COLUMN not in text and display.PARITY_FLAG not in text and "Parity (runs" not in text
    assert not any(line.startswith("parity") for line in report.summary(r))
    for name in ("verdicts.csv", "per_config.csv", "runs.csv", "summary.csv"):
        assert "parity" not in (out / name).read_text().splitlines()[0], name
