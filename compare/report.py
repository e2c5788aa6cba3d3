"""python -m compare.report --experiment NAME [--tracking-uri URI] [--out DIR] [--format md,html,csv] [--run ID]
                           [--stale-after SECONDS] [--no-log]

Turns an experiment's paired runs into Markdown, a self-contained HTML page and CSV files,
and logs them as artifacts of a `report` run in the same experiment.
"""

import argparse
import base64
import html
import math
import os
import re
import sys
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from . import plots, tables
from .runs import FRAMEWORKS, STALE_AFTER_S, ReportError, load_pairs, samples, search

PROJECT_ROOT = Path(__file__).resolve().parents[1]
REPORTS_ROOT = PROJECT_ROOT / "reports"
DEFAULT_TRACKING_URI = f"sqlite:///{PROJECT_ROOT / 'mlflow.db'}"  # the training default (experiments.config)


def markdown_table(df, index=True):
    """A GitHub table that also reads well in a terminal."""
    df = df.reset_index() if index else df
    cells = [[str(c) for c in df.columns]] + [[_fmt(v) for v in row] for row in df.itertuples(index=False)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = ["| " + " | ".join(v.ljust(w) for v, w in zip(row, widths)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _fmt(value):
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4g}"
    return "n/a" if value is pd.NA or value is None else str(value)


def chosen_run(pairs, summary, run_id=None):
    """The parent run for the per-class view: the one asked for, else the best scratchnn config's."""
    if run_id:
        if run_id not in set(pairs.run_id):
            raise ReportError(f"run {run_id!r} is not a paired run of this experiment")
        return run_id
    fw = next(iter(summary["best"]), None)  # scratchnn's best, else Keras's
    if fw is None:
        return None
    ok = pairs[(pairs.config_id == summary["best"][fw]["config_id"]) & samples(pairs, [fw])]
    return ok.run_id.iloc[0] if len(ok) else None


def run_details(df, parent_id, folder):
    """Confusion matrices and metric histories of the chosen run's children."""
    client = mlflow.MlflowClient()
    matrices, histories, notes = {}, {}, []
    children = df[df["tags.mlflow.parentRunId"] == parent_id]
    for fw in FRAMEWORKS:
        child = children[children["tags.framework"] == fw]
        if child.empty:
            notes.append(f"{fw}: no child run")
            continue
        child_id = child.run_id.iloc[0]
        try:
            matrices[fw] = np.loadtxt(client.download_artifacts(child_id, "confusion_matrix.csv", str(folder)), delimiter=",")
        except Exception as exc:  # an old run without the artifact
            notes.append(f"{fw}: no confusion matrix ({type(exc).__name__})")
        keys = {"loss": "train/loss", "accuracy": "train/acc", "val_loss": "val/loss", "val_accuracy": "val/acc"}
        history = {k: [m.value for m in sorted(client.get_metric_history(child_id, v), key=lambda m: m.step)]
                   for k, v in keys.items()}
        if history["loss"]:
            histories[fw] = history
    return matrices, histories, notes


def build(experiment, tracking_uri, out, run_id=None, stale_after_s=STALE_AFTER_S):
    """Compute every section and write the figures; returns the sections and file paths."""
    df = search(experiment, tracking_uri)
    pairs = load_pairs(df, stale_after_s=stale_after_s)
    table = tables.per_config(pairs)
    by_axis, two_way = tables.pivots(pairs)
    summary = tables.summary(pairs, table)
    out.mkdir(parents=True, exist_ok=True)
    figures = {}
    if pairs.scratchnn_acc.notna().any() or pairs.keras_acc.notna().any():
        plots.accuracy_vs_lr(pairs, out / "accuracy_vs_lr.png")
        figures["Test accuracy against learning rate"] = out / "accuracy_vs_lr.png"
    if two_way.size:
        plots.ratio_heatmap(two_way, out / "time_ratio_heatmap.png")
        figures["Time ratio over width × batch size"] = out / "time_ratio_heatmap.png"
    parent = chosen_run(pairs, summary, run_id)
    per_class, notes = None, []
    if parent:
        with tempfile.TemporaryDirectory() as tmp:
            matrices, histories, notes = run_details(df, parent, Path(tmp))
        if histories:
            plots.learning_curves(histories, out / "learning_curves.png", f"run {parent}")
            figures["Learning curves of the chosen run"] = out / "learning_curves.png"
        if matrices:
            plots.confusion_matrices(matrices, out / "confusion_matrices.png")
            figures["Confusion matrices of the chosen run"] = out / "confusion_matrices.png"
            per_class = pd.concat({fw: tables.per_class(C) for fw, C in matrices.items()}, axis=1)
            per_class.columns = [f"{fw} {name}" for fw, name in per_class.columns]
    return {"pairs": pairs, "table": table, "by_axis": by_axis, "two_way": two_way, "summary": summary,
            "parent": parent, "per_class": per_class, "notes": notes, "figures": figures}


def summary_markdown(experiment, r):
    s = r["summary"]
    lines = [f"# scratchnn vs Keras: {experiment}", "",
             f"- configs: {s['configs']} ({s['paired_configs']} with both frameworks finished)",
             f"- scratchnn faster in {_pct(s['share_faster'])} of configs; at least as accurate in "
             f"{_pct(s['share_at_least_as_accurate'])}",
             "- paired runs: " + ", ".join(f"{n} {state}" for state, n in s["paired_runs"].items()),
             "- failed runs: " + ", ".join(f"{fw} {n}" for fw, n in s["failed_runs"].items()) +
             f"; running: {s['paired_runs']['running']}"]
    for fw, best in s["best"].items():
        settings = ", ".join(f"{c}={_fmt(best[c])}" for c in ("depth", "width", "activation", "batch_size", "lr", "optimizer"))
        lines.append(f"- best {fw}: {100 * best['acc']:.2f}% ({settings})")
    d = s["delta_distribution"]
    if d.get("count"):
        lines.append(f"- Δacc (pp) over configs: min {d['min']:.2f}, median {d['50%']:.2f}, mean {d['mean']:.2f}, max {d['max']:.2f}")
    return "\n".join(lines)


def _pct(x):
    return "n/a" if x != x else f"{100 * x:.0f}%"


def sections(experiment, r):
    """(title, DataFrame or text) in the order the report shows them."""
    parts = [("Summary", summary_markdown(experiment, r)), ("Per config (mean ± std over seeds)", tables.display(r["table"]))]
    for axis, pivot in r["by_axis"].items():
        parts.append((f"By {axis}", pivot))
    if r["two_way"].size:
        parts.append(("Time ratio (geometric mean), width × batch size", r["two_way"]))
    if r["per_class"] is not None:
        parts.append((f"Per class, run {r['parent']}", r["per_class"].round(4)))
    unfinished = tables.unfinished(r["pairs"])
    if len(unfinished):
        parts.append(("Failed and running paired runs", unfinished))
    if r["notes"]:
        parts.append(("Notes", "\n".join(f"- {n}" for n in r["notes"])))
    return parts


def write(experiment, r, out, formats):
    written = []
    parts = sections(experiment, r)
    if "md" in formats:
        text = "\n\n".join(p if isinstance(p, str) and t == "Summary" else f"## {t}\n\n" +
                           (p if isinstance(p, str) else markdown_table(p, index=p.index.name is not None))
                           for t, p in parts)
        text += "\n\n" + "\n".join(f"![{t}]({f.name})" for t, f in r["figures"].items()) + "\n"
        (out / "report.md").write_text(text)
        written.append(out / "report.md")
    if "html" in formats:
        body = []
        for title, part in parts:
            body.append(f"<h2>{html.escape(title)}</h2>")
            body.append(f"<pre>{html.escape(part)}</pre>" if isinstance(part, str)
                        else part.to_html(na_rep="n/a", escape=True))
        for title, path in r["figures"].items():
            data = base64.b64encode(path.read_bytes()).decode()
            body.append(f"<h2>{html.escape(title)}</h2><img src='data:image/png;base64,{data}'>")
        (out / "report.html").write_text(f"<!doctype html><html><head><meta charset='utf-8'>"
                                         f"<title>{html.escape(experiment)}</title>"
                                         "<style>body{font-family:sans-serif} td,th{padding:2px 8px}</style></head><body>"
                                         + "\n".join(body) + "</body></html>")
        written.append(out / "report.html")
    if "csv" in formats:
        r["table"].to_csv(out / "per_config.csv", index=False)
        r["pairs"].to_csv(out / "runs.csv", index=False)
        for axis, pivot in r["by_axis"].items():
            pivot.to_csv(out / f"by_{axis}.csv")
        r["two_way"].to_csv(out / "time_ratio_width_x_batch.csv")
        written += sorted(out.glob("*.csv"))
    return written


def output_folder(experiment, root=REPORTS_ROOT):
    """<root>/<experiment> with the name made one plain folder name: every character outside
    [A-Za-z0-9._-] becomes `_`, and a name of dots only (`.`, `..`) becomes underscores."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", experiment)
    if set(name) <= {"."}:
        name = "_" * max(len(name), 1)
    return Path(root) / name


def main(argv=None, reports_root=REPORTS_ROOT):
    parser = argparse.ArgumentParser(description="scratchnn vs Keras report from an MLflow experiment")
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--tracking-uri", default=DEFAULT_TRACKING_URI)
    parser.add_argument("--out", type=Path, default=None,
                        help="default: reports/<experiment>/, the name with characters other than [A-Za-z0-9._-] as _")
    parser.add_argument("--format", default="md,html,csv")
    parser.add_argument("--run", default=None, help="parent run id for the per-class view (default: best config)")
    parser.add_argument("--stale-after", type=float, default=STALE_AFTER_S,
                        help="seconds without a heartbeat after which a RUNNING run counts as dead (STALE)")
    parser.add_argument("--no-log", action="store_true", help="do not log the report to MLflow")
    args = parser.parse_args(argv)
    formats = set(args.format.split(","))
    if not formats <= {"md", "html", "csv"}:
        parser.error(f"--format takes md, html and csv. Received: --format={args.format}")
    out = args.out or output_folder(args.experiment, reports_root)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(args.tracking_uri)
    try:
        result = build(args.experiment, args.tracking_uri, out, args.run, args.stale_after)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    files = write(args.experiment, result, out, formats)
    if not args.no_log:
        experiment_id = mlflow.get_experiment_by_name(args.experiment).experiment_id
        with mlflow.start_run(experiment_id=experiment_id, run_name="report", tags={"role": "report"}):
            mlflow.log_artifacts(str(out))
    print(summary_markdown(args.experiment, result))
    print("written: " + ", ".join(str(f) for f in files + list(result["figures"].values())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
