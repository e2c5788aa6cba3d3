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
    table = r.comparisons.set_index("config_id")
    assert table["verdict"].to_dict() == {"same": stats.EQUIVALENT, "gap": stats.DIFFERENT,
                                          "single": stats.SINGLE, "wide": stats.INCONCLUSIVE}
    tests = r.tests.merge(r.pairs[["run_id", "config_id", "seed"]], on="run_id").set_index(["config_id", "seed"])
    assert tests.loc[("same", 0), "p"] == 1.0 and tests.loc[("same", 0), ["b", "c"]].tolist() == [0, 0]
    assert tests.loc[("same", 1), ["b", "c"]].tolist() == [1, 0]
    assert ((tests.loc["gap", "p"] < 1e-3).all()
            and tests.loc[("gap", 0), ["b", "c", "n_test"]].tolist() == [200, 0, N_TEST])
    assert table.loc["gap", "delta_pp"] == pytest.approx(2.0) and table.loc["gap", "mcnemar_below"] == 3
    wide = table.loc["wide"]
    assert wide["delta_lo"] < 0 < wide["delta_hi"] and wide["delta_hi"] - wide["delta_lo"] > 2 * 0.2
    assert table.loc["single", "n"] == 1 and np.isnan(table.loc["single", "delta_lo"])
    # BH over the three comparisons with 3 seeds, each family on its own; spreads 0.01 to 0.5 pp: not pooled
    assert table["p_diff_adj"].notna().sum() == 3 and table.loc["gap", "p_diff_adj"] == pytest.approx(
        min(1, 3 / 1 * table.loc["gap", "p_diff"]))  # the smallest of three p-values, times m / rank
    assert not r.spreads["keras"]["delta"].pooled and "Bartlett" in r.spreads["keras"]["delta"].why
    assert table.loc["wide", "seeds_80"] > 3 and np.isnan(table.loc["gap", "seeds_80"])  # advice where inconclusive


def test_time_ratio_intervals_and_overview(verdict_report):
    """The three 3-seed configs have the same log-ratio spread: pooled, 6 degrees of freedom."""
    r, _, _ = verdict_report
    gap = r.comparisons.set_index("config_id").loc["gap"]
    logs = np.log([1.0 / 2, 1.1 / 2, 1.2 / 2])
    half = stats.stats.t.ppf(0.975, 6) * logs.std(ddof=1) / np.sqrt(3)  # pooled variance = each config's own
    assert (gap["time_ratio"], gap["ratio_lo"], gap["ratio_hi"]) == pytest.approx(
        (np.exp(logs.mean()), np.exp(logs.mean() - half), np.exp(logs.mean() + half)))
    assert r.spreads["keras"]["ratio"].pooled and r.spreads["keras"]["ratio"].df == 6
    overview = r.summary["overview"]["keras"]
    assert overview["verdicts"] == {stats.EQUIVALENT: 1, stats.DIFFERENT: 1, stats.INCONCLUSIVE: 1, stats.SINGLE: 1}
    assert overview["family"] == 3
    answer = r.grid["keras"]
    assert answer["ratio"]["lo"] < answer["ratio"]["mean"] < answer["ratio"]["hi"] and answer["ratio"]["k"] == 4


def test_summary_leads_with_verdicts_and_csv_has_the_same(verdict_report):
    r, out, _ = verdict_report
    lines = report.summary(r)
    assert (lines[0].startswith("scratchnn − keras over 4 configs: Δacc +0.56 pp, 95% CI [")
            and "inconclusive" in lines[0])
    assert lines[1].startswith("time ratio scratchnn/keras (fit time, < 1: scratchnn faster) over 4 configs: 0.")
    assert lines[1].endswith("BLAS not recorded") and lines[2].startswith("seeds: ")
    assert lines[3] == ("scratchnn vs keras per config: 1 equivalent, 1 different, 1 inconclusive, "
                        "1 inconclusive (n=1) (of 4 configs)")
    assert "Benjamini–Hochberg" in lines[5] and "seeds: 1–3 per config (train.seed=0,1,2)" in lines[7]
    summary = (out / "summary.csv").read_text().splitlines()
    assert summary[0].startswith(
        "vs,equivalent,different,inconclusive,inconclusive (n=1),configs,grid_verdict,delta_pp")
    assert summary[1].startswith("keras,1,1,1,1,4,inconclusive,0.5")
    per_config = (out / "per_config.csv").read_text()
    assert "verdict_vs_keras" in per_config.splitlines()[0] and "inconclusive (n=1)" in per_config


def test_markdown_verdict_table_has_epochs_and_formatted_numbers(verdict_report):
    _, out, _ = verdict_report
    md = (out / "report.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| width"))
    assert [c.strip() for c in header.strip("|").split("|")][:4] == ["width", "epochs", "vs", "seeds"]
    gap = next(line for line in md.splitlines() if line.startswith("| 64 ") and "different" in line)
    assert "+2.00" in gap and "e-" in gap  # Δacc with 2 decimals, p-values in scientific notation
    assert "p diff (BH)" in header and "## Method" in md and "![" in md
    single = next(line for line in md.splitlines() if line.startswith("| 128 "))
    assert "inconclusive (n=1)" in single and "(one seed: this run's test only)" in single


def test_margin_changes_the_verdict(verdict_report, tmp_path):
    """The same 2 pp gap is equivalent within a 5 pp margin."""
    uri = verdict_report[2]
    r = report.build(["verdicts"], uri, tmp_path / "r", margin_pp=5.0)
    assert r.comparisons.set_index("config_id").loc["gap", "verdict"] == stats.EQUIVALENT
    assert (tmp_path / "r" / "cache").is_dir()  # predictions cached in the output folder
    assert len(load_pairs(search("verdicts", uri))) == 10
