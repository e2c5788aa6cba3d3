"""Which figures a report draws, and the run its per-run views show (compare/plots.py draws them; matplotlib
is imported only here, when a report draws its figures)."""

from pathlib import Path

import mlflow
import numpy as np

from experiments import names

from . import verdicts
from .runs import NUMERIC, ReportError, label, samples, value_text

FOREST_ROWS = 60  # more comparisons than this: the forest plot draws the "where they differ" rows instead


def chosen_run(pairs, summary, run_id=None):
    """The parent run for the per-class view: the one asked for, else a run of REFERENCE's best config."""
    if run_id:
        if run_id not in set(pairs.run_id):
            raise ReportError(f"run {run_id!r} is not a paired run of these experiments")
        return run_id
    fw, best = next(iter(summary["best"].items()), (None, None))
    if fw is None:
        return None
    ok = pairs[(pairs.experiment == best["experiment"]) & (pairs.config_id == best["config_id"]) & samples(pairs, [fw])]
    return ok.run_id.iloc[0] if len(ok) else None


def run_details(pairs, parent_id, cache, tracking_uri):
    """Confusion matrices and metric histories of the chosen run's children, and notes on what is missing."""
    client = mlflow.MlflowClient(tracking_uri)
    row = pairs[pairs.run_id == parent_id].iloc[0]
    matrices, histories, notes = {}, {}, []
    for fw in (f for f in names.FRAMEWORKS if f"{f}_run" in row and isinstance(row[f"{f}_run"], str)):
        child = row[f"{fw}_run"]
        try:
            folder = Path(cache) / child
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / names.CONFUSION
            matrices[fw] = np.loadtxt(path if path.exists() else
                                      client.download_artifacts(child, names.CONFUSION, str(folder)), delimiter=",")
        except Exception as exc:  # an old run without the artifact
            notes.append(f"{fw}: no confusion matrix ({type(exc).__name__})")
        history = {key: [m.value for m in sorted(client.get_metric_history(child, metric), key=lambda m: m.step)]
                   for key, metric in names.EPOCH_METRICS.items()}
        if history["loss"]:
            histories[fw] = history
    return matrices, histories, notes


def sweep(r, out):
    """{key: path} of the figures over the configs: the forest plot, the time ratio heat map, accuracy by axis."""
    from . import plots

    figures = {}
    shown = r.comparisons[r.comparisons["n"] > 0] if len(r.comparisons) else r.comparisons
    if len(shown) > FOREST_ROWS and len(r.where):
        shown = r.where.dropna(subset=["delta_pp"])
        labels = [f"{w['key']}={value_text(w['value'])} vs {w['vs']} ({w['configs']} configs)"
                  for w in shown.to_dict("records")]
    else:
        configs = shown.merge(r.table, on=list(verdicts.KEYS), how="left").to_dict("records")
        labels = [f"{label(c, r.columns)} vs {c['vs']}" for c in configs]
    if len(shown):
        plots.forest(shown, labels, r.margin_pp, out / "forest_delta_acc.png")
        figures["forest"] = out / "forest_delta_acc.png"
    if r.two_way:
        plots.ratio_heatmaps(r.two_way, out / "time_ratio_heatmap.png")
        figures["heatmap"] = out / "time_ratio_heatmap.png"
    axes = [c for c in r.columns if c in NUMERIC]
    if axes:
        plots.accuracy_by_axis(r.pairs, axes, out / "accuracy_by_axis.png")
        figures["accuracy"] = out / "accuracy_by_axis.png"
    return figures


def of_run(histories, matrices, out, title):
    """{key: path} of the chosen run's figures: its learning curves and confusion matrices, when it has them."""
    from . import plots

    figures = {}
    if histories:
        plots.learning_curves(histories, out / "learning_curves.png", title)
        figures["curves"] = out / "learning_curves.png"
    if matrices:
        plots.confusion_matrices(matrices, out / "confusion_matrices.png")
        figures["confusion"] = out / "confusion_matrices.png"
    return figures
