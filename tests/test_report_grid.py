"""The report at grid scale in small: the grid answer first, McNemar from the parents' logged counts (no
download), BLAS kernels beside the time ratios, no machine paths in any file, one-seed summaries."""

from pathlib import Path

import pytest

from compare import plots, report
from experiments import names
from stores import add_pair, done, params, tmp_store

SECRET_DATA = "/home/someone/private-data"
KERNELS = ("openblas 0.3.31 Haswell", "openblas 0.3.31 SkylakeX")


def _blas(kernel):
    return dict(zip(names.BLAS_TAGS, kernel.split()))


def _fill(client, experiment, uri, seeds=(0, 1, 2), kernels=KERNELS[:1]):
    """4 configs (width) x seeds; the parents log McNemar counts, the children no predictions."""
    ids = []
    for i, width in enumerate((32, 64, 128, 256)):
        for seed in seeds:
            values = {**params(width=width, seed=seed), "data.dir": SECRET_DATA, "mlflow.tracking_uri": uri}
            pair = add_pair(client, experiment, values,
                            {"scratchnn": done(0.95 + 0.001 * seed, 1.0), "keras": done(0.95, 2.0 + 0.1 * seed)},
                            config_id=f"w{width}", **_blas(kernels[(i + seed) % len(kernels)]))
            for count, value in ((names.MCNEMAR_B, 30 + seed), (names.MCNEMAR_C, 20), (names.MCNEMAR_N, 10000)):
                client.log_metric(pair["parent"], names.versus("keras", count), value)
            ids.append(pair)
    return ids


@pytest.fixture(scope="module")
def grid_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("grid")
    uri, client, experiment = tmp_store(root, "grid")
    _fill(client, experiment, uri)
    out = root / "r"
    assert report.main(["--experiment", "grid", "--tracking-uri", uri, "--out", str(out), "--no-log"]) == 0
    return report.build(["grid"], uri, root / "again"), out, uri


def test_the_report_opens_with_the_grid_answer_and_the_seeds_advice(grid_report):
    r, out, _ = grid_report
    md = (out / "report.md").read_text()
    summary = md.split("## Summary\n\n", 1)[1].splitlines()
    assert summary[0].startswith("- scratchnn − keras over 4 configs: Δacc +0.10 pp, 95% CI [")
    assert summary[1].startswith("- time ratio scratchnn/keras") and summary[1].endswith(f"BLAS: {KERNELS[0]}")
    assert summary[2].startswith("- seeds: ")
    assert "## Where they differ" in md and f"time ratio ({KERNELS[0]})" in md
    assert "| keras | width=64  | 1       |" in md  # one config per width value


def test_mcnemar_from_the_logged_counts_without_downloads(grid_report):
    r, out, _ = grid_report
    assert len(r.tests) == 12 and set(r.tests["b"]) == {30, 31, 32} and r.tests["n_test"].eq(10000).all()
    assert not any(note.startswith("McNemar") for note in r.notes)  # the children have no predictions
    assert not list((out / report.CACHE).rglob(names.PREDICTIONS))


def test_no_machine_path_in_any_report_file(grid_report):
    _, out, uri = grid_report
    store = uri[len("sqlite:///"):]
    for path in (p for p in Path(out).iterdir() if p.is_file() and p.suffix in (".md", ".html", ".csv")):
        text = path.read_text()
        assert SECRET_DATA not in text and store not in text and "tracking_uri" not in text, path.name


def test_mixed_kernels_are_named_and_warned(tmp_path):
    uri, client, experiment = tmp_store(tmp_path, "mixed")
    _fill(client, experiment, uri, kernels=KERNELS)
    r = report.build(["mixed"], uri, tmp_path / "r")
    lines = report.summary(r)
    assert any(line.startswith("warning: the runs compared with keras used different BLAS kernels") for line in lines)
    assert f"{KERNELS[0]} (6 runs); {KERNELS[1]} (6 runs)" in lines[1]
    shown = report.sections(r)[2][1]
    assert shown.columns[-1] == "BLAS" and f"{KERNELS[0]}/{KERNELS[1]}" in set(shown["BLAS"])


def test_one_seed_sweep_counts_one_seed_and_names_the_folder(tmp_path, capsys):
    uri, client, experiment = tmp_store(tmp_path, "one")
    _fill(client, experiment, uri, seeds=(0,))
    out = tmp_path / "r"
    assert report.main(["--experiment", "one", "--tracking-uri", uri, "--out", str(out), "--no-log"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert any("; seeds: 1 per config (train.seed=0); runs: 4 finished" in line for line in printed)
    written = [line for line in printed if line.startswith("written: ")]
    assert written == [f"written: {out}/ (open report.html; also report.md, 7 CSV tables, 2 figures)"]


def test_one_epoch_learning_curves_are_bars_with_values(monkeypatch, tmp_path):
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig))
    one_epoch = {"loss": [0.5], "accuracy": [0.9], "val_loss": [0.6], "val_accuracy": [0.88]}
    plots.learning_curves({"scratchnn": one_epoch, "keras": one_epoch}, tmp_path / "curves.png")
    loss, accuracy = figures[0].axes
    assert len(loss.patches) == 4 and [t.get_text() for t in accuracy.texts] == ["0.9", "0.88", "0.9", "0.88"]
