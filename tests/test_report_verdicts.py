"""Verdicts from synthetic stores whose answers are known: real sqlite MLflow stores in tmp_path,
children with real predictions.csv artifacts on 10,000 test images."""

import numpy as np
import pytest

from compare import report, stats
from compare.runs import load_pairs, search
from stores import N_TEST, make_verdict_store

@pytest.fixture(scope="module")
def verdict_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("verdicts")
    uri = make_verdict_store(root)
    out = root / "report"
    r = report.build(["verdicts"], uri, out)
    report.write(r, out, {"md", "html", "csv"})
    return r, out, uri


def test_known_verdicts_and_mcnemar(verdict_report):
    r, _, _ = verdict_report
    table = r["comparisons"].set_index("config_id")
    assert table["verdict"].to_dict() == {"same": stats.EQUIVALENT, "gap": stats.DIFFERENT,
                                          "single": stats.SINGLE, "wide": stats.INCONCLUSIVE}
    tests = r["tests"].merge(r["pairs"][["run_id", "config_id", "seed"]], on="run_id").set_index(["config_id", "seed"])
    assert tests.loc[("same", 0), "p"] == 1.0 and tests.loc[("same", 0), ["b", "c"]].tolist() == [0, 0]
    assert tests.loc[("same", 1), ["b", "c"]].tolist() == [1, 0]
    assert (tests.loc["gap", "p"] < 1e-3).all() and tests.loc[("gap", 0), ["b", "c", "n_test"]].tolist() == [200, 0, N_TEST]
    assert table.loc["gap", "delta_pp"] == pytest.approx(2.0) and table.loc["gap", "mcnemar_below"] == 3
    wide = table.loc["wide"]
    assert wide["delta_lo"] < 0 < wide["delta_hi"] and wide["delta_hi"] - wide["delta_lo"] > 2 * 0.2
    assert table.loc["single", "n"] == 1 and np.isnan(table.loc["single", "delta_lo"])
    # Holm over the three comparisons with 3 seeds, each family on its own
    assert table["p_diff_holm"].notna().sum() == 3 and table.loc["gap", "p_diff_holm"] >= table.loc["gap", "p_diff"]


def test_time_ratio_intervals_and_overview(verdict_report):
    r, _, _ = verdict_report
    gap = r["comparisons"].set_index("config_id").loc["gap"]
    expected = stats.ratio_interval([1.0 / 2, 1.1 / 2, 1.2 / 2])
    assert (gap["time_ratio"], gap["ratio_lo"], gap["ratio_hi"]) == pytest.approx(expected[:3])
    overview = r["summary"]["overview"]["keras"]
    assert overview["verdicts"] == {stats.EQUIVALENT: 1, stats.DIFFERENT: 1, stats.INCONCLUSIVE: 1, stats.SINGLE: 1}
    assert overview["ratio_lo"] < overview["time_ratio"] < overview["ratio_hi"] and overview["family"] == 3


def test_summary_leads_with_verdicts_and_csv_has_the_same(verdict_report):
    r, out, _ = verdict_report
    lines = report.summary(r)
    assert lines[0] == "scratchnn vs keras: 1 equivalent, 1 different, 1 inconclusive, 1 inconclusive (n=1) (of 4 configs)"
    assert lines[1].startswith("time ratio scratchnn/keras (fit time, < 1: scratchnn faster): 0.")
    assert "95% CI [" in lines[1] and "Holm" in lines[2]
    summary = (out / "summary.csv").read_text().splitlines()
    assert summary[0].startswith("vs,equivalent,different,inconclusive,inconclusive (n=1),configs,time_ratio,ratio_lo")
    assert summary[1].startswith("keras,1,1,1,1,4,")
    per_config = (out / "per_config.csv").read_text()
    assert "verdict_vs_keras" in per_config.splitlines()[0] and "inconclusive (n=1)" in per_config


def test_markdown_verdict_table_has_epochs_and_formatted_numbers(verdict_report):
    _, out, _ = verdict_report
    md = (out / "report.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| width"))
    assert [c.strip() for c in header.strip("|").split("|")][:4] == ["width", "epochs", "vs", "seeds"]
    gap = next(line for line in md.splitlines() if line.startswith("| 64 ") and "different" in line)
    assert "+2.00" in gap and "e-" in gap  # Δacc with 2 decimals, p-values in scientific notation
    assert "Holm" in md and "## Method" in md and "![" in md


def test_margin_changes_the_verdict(verdict_report, tmp_path):
    """The same 2 pp gap is equivalent within a 5 pp margin."""
    uri = verdict_report[2]
    r = report.build(["verdicts"], uri, tmp_path / "r", margin_pp=5.0)
    assert r["comparisons"].set_index("config_id").loc["gap", "verdict"] == stats.EQUIVALENT
    assert (tmp_path / "r" / "cache").is_dir()  # predictions cached in the output folder
    assert len(load_pairs(search("verdicts", uri))) == 10
