"""python -m compare.report --experiment NAME [--experiment NAME2 ...] [--tracking-uri URI] [--out DIR]
                           [--format md,html,csv] [--run ID] [--margin-pp PP] [--multiplicity bh|holm|none]
                           [--parity-bound DEV] [--stale-after SECONDS] [--no-log]

Turns experiments' runs into Markdown, a self-contained HTML page and CSV files: one answer per
framework pair over all configs, the same per value of each swept key, per config and framework
pair seed-paired statistics and an equivalence verdict (docs/statistics.md), and the
parity check where the runs made one (configs at or beyond --parity-bound flagged). The report
is logged as a run of its own experiment, `<experiment>-reports`, never among the training runs.
"""

import argparse
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import pandas as pd

from experiments import names
from experiments.locations import DEFAULT_TRACKING_URI, REPORTS, folder_name

from . import answer, display, figures, grid, mcnemar, output, render, stats, tables, verdicts
from .figures import FOREST_ROWS
from .runs import PARITY_BOUND, STALE_AFTER_S, ReportError, config_columns, label, load_pairs, search, value_text

REPORTS_ROOT = Path(REPORTS)  # reports/ in the working directory, beside the default store
CACHE = "cache"  # <out>/cache/<child run id>/: downloaded artifacts, reused by later reports


@dataclass
class Report:
    """Everything one report shows, computed once by `build` and read by every later step."""
    experiments: list
    pairs: pd.DataFrame  # one row per (config, seed) pair of parent runs (compare.runs.load_pairs)
    table: pd.DataFrame  # per config (compare.tables.per_config)
    tests: pd.DataFrame  # McNemar per run (compare.mcnemar.tests)
    comparisons: pd.DataFrame  # per config and framework pair: Δacc, its CI, the verdict (compare.verdicts)
    by_axis: dict
    two_way: dict
    columns: list  # the swept keys
    margin_pp: float
    parity: pd.DataFrame
    parity_bound: float
    multiplicity: str
    spreads: dict
    grid: dict  # the grid-level answer per framework compared (compare.grid.overall)
    kernels: dict
    where: pd.DataFrame
    summary: dict
    hints: dict
    figures: dict = field(default_factory=dict)
    parent: str | None = None  # the run whose learning curves and confusion matrices are drawn
    parent_label: str | None = None
    per_class: pd.DataFrame | None = None
    notes: list = field(default_factory=list)


def build(experiments, tracking_uri, out, *, run_id=None, stale_after_s=STALE_AFTER_S, margin_pp=0.2,
          parity_bound=PARITY_BOUND, multiplicity="bh"):
    """Compute every table, test and figure (figures written to `out`); returns the Report."""
    pairs = load_pairs(search(experiments, tracking_uri), stale_after_s=stale_after_s)
    out.mkdir(parents=True, exist_ok=True)
    tests, notes = mcnemar.tests(pairs, out / CACHE, tracking_uri)
    spreads = verdicts.spreads(pairs)
    comparisons = verdicts.comparisons(pairs, tests, margin_pp, multiplicity, found=spreads)
    table, columns = tables.per_config(pairs), config_columns(pairs)
    by_axis, two_way = tables.pivots(pairs)
    parity = tables.parity(pairs, parity_bound)
    r = Report(
        experiments=list(experiments), pairs=pairs, table=table, tests=tests, comparisons=comparisons,
        by_axis=by_axis, two_way=two_way, columns=columns, margin_pp=margin_pp, parity=parity,
        parity_bound=parity_bound, multiplicity=multiplicity, spreads=spreads,
        grid=grid.overall(comparisons, spreads, margin_pp), kernels=grid.kernels(pairs),
        where=grid.where(comparisons, table, columns, spreads, margin_pp=margin_pp, multiplicity=multiplicity),
        summary=tables.summary(pairs, table, verdicts.overview(comparisons), parity_=parity, bound=parity_bound),
        hints={e: names.view_hint(tracking_uri, i)
               for e, i in pairs[["experiment", "experiment_id"]].drop_duplicates().values},
        notes=notes)
    r.figures = figures.sweep(r, out)
    r.parent = figures.chosen_run(pairs, r.summary, run_id)
    if r.parent:
        matrices, histories, more = figures.run_details(pairs, r.parent, out / CACHE, tracking_uri)
        r.notes += more
        record = pairs[pairs.run_id == r.parent].iloc[0].to_dict()
        r.parent_label = f"{label(record, r.columns)}, seed {value_text(record['seed'])}"
        r.figures.update(figures.of_run(histories, matrices, out, r.parent_label))
        if matrices:
            r.per_class = display.per_class({fw: tables.per_class(C) for fw, C in matrices.items()})
    return r


def summary(r, report_hint=None, *, hints=True):
    """The grid answer and the summary lines, then (`hints`: on the terminal, never in a report file, as
    they name the store) where to see the runs (and this report) in the MLflow UI."""
    lines = answer.lines(r.grid, r.kernels, r.margin_pp)
    lines += display.summary_lines(r.summary, r.table, r.columns, r.margin_pp,
                                   multiplicity=r.multiplicity, spreads=r.spreads)
    if not hints:  # the UI pages without the store (a report file never names a machine path)
        pages = r.pairs[["experiment", "experiment_id"]].drop_duplicates().values
        return lines + [f"training runs of {e} in the MLflow UI started on this store (the command is printed with "
                        f"the report): {names.UI_RUNS_PAGE.format(experiment_id=i)}" for e, i in pages]
    lines += [f"training runs of {e} in the MLflow UI: {hint}" for e, hint in r.hints.items()]
    return lines + ([f"this report in the MLflow UI: {report_hint}"] if report_hint else [])


def _kernel_column(r):
    """{config key: BLAS kernels} when the report's runs used more than one kernel, else None."""
    if len({k for found in r.kernels.values() for k in found}) < 2:
        return None
    used = r.pairs.assign(blas=r.pairs["blas"].fillna("not recorded"))
    return used.groupby(list(verdicts.KEYS))["blas"].agg(lambda v: "/".join(sorted(set(v)))).to_dict()


def _kernel_label(r):
    """The BLAS kernel every run used (`openblas 0.3.31 Haswell`), `BLAS not recorded`, or `BLAS: see column`."""
    found = {k for kernels in r.kernels.values() for k in kernels}
    return "BLAS: see column" if len(found) > 1 else next(iter(found - {"not recorded"}), "BLAS not recorded")


def write(r, out, formats, report_hint=None):
    """Write the chosen formats into `out` (compare/output.py); returns the files written (figures excluded)."""
    return output.write(r, out, formats, sections(r, report_hint))


def sections(r, report_hint=None):
    """(title, content) in the order the report shows them; see compare/render.py."""
    columns, fws, figures = r.columns, r.summary["frameworks"], r.figures
    kernel = _kernel_label(r)
    parts = [("Summary", summary(r, report_hint, hints=False))]
    if len(r.where):
        parts.append(("Where they differ: the grid answer per value of each swept key",
                      answer.where(r.where, r.multiplicity, kernel)))
    parts += [("Verdicts per config",
               display.verdicts(r.comparisons, r.table, columns, r.parity, multiplicity=r.multiplicity,
                                blas=_kernel_column(r), kernel=kernel)
               if len(r.comparisons)
               else f"No config has {names.REFERENCE} and another framework both finished yet: nothing to compare.")]
    parts += [(title, figures[key]) for key, title in (
        ("forest", "Δacc with its 95% CI, per config (per swept value beyond "
                   f"{FOREST_ROWS} comparisons; shaded: the equivalence margin)"),
        ("heatmap", "Time ratio (geometric mean over seeds), width × batch size"),
        ("accuracy", "Test accuracy by each varying setting")) if key in figures]
    parts.append(("Per config (mean ± std over seeds)", display.per_config(r.table, columns, fws)))
    parts += [(f"Time ratio {names.REFERENCE}/{other}, width × batch size", display.two_way(pivot))
              for other, pivot in r.two_way.items()]
    if r.parent:
        parts += [(f"Learning curves: {r.parent_label}", figures["curves"])] if "curves" in figures else []
        parts += [(f"Confusion matrices: {r.parent_label}", figures["confusion"])] if "confusion" in figures else []
        parts += [(f"Per class: {r.parent_label}", r.per_class)] if r.per_class is not None else []
    if len(r.tests):
        parts.append(("McNemar per run", display.mcnemar_runs(r.tests, r.pairs, columns)))
    unfinished = tables.unfinished(r.pairs)
    if len(unfinished):
        parts.append(("Failed and running runs", display.unfinished(unfinished, columns, fws)))
    if r.notes:
        parts.append(("Notes", r.notes))
    return parts + [("Method", render.method(r.margin_pp, r.parity_bound if len(r.parity) else None,
                                             r.multiplicity))]


def written_line(out, files, figures):
    """`written: <folder>/ (main file: report.html; also ...)`: the folder, its main file, what else is there."""
    main_file = next((f for f in files if f.name == "report.html"), next((f for f in files if f.name == "report.md"),
                                                                        files[0] if files else None))
    others = [f for f in files if f != main_file]
    csv, text = [f for f in others if f.suffix == ".csv"], [f.name for f in others if f.suffix != ".csv"]
    rest = text + ([f"{len(csv)} CSV tables"] if csv else []) + ([f"{len(figures)} figures"] if figures else [])
    head = f"written: {out}{os.sep} (open {main_file.name}" if main_file else f"written: {out}{os.sep} ("
    return head + (f"; also {', '.join(rest)}" if rest else "") + ")"


def output_folder(experiment, root=REPORTS_ROOT):
    """<root>/<experiment> with the name made one plain folder name: every character outside
    [A-Za-z0-9._+-] becomes `_`, and a name of dots only (`.`, `..`) becomes underscores."""
    name = re.sub(r"[^A-Za-z0-9._+-]", "_", experiment)
    if set(name) <= {"."}:
        name = "_" * max(len(name), 1)
    return Path(root) / name


def reports_experiment(client, experiments, tracking_uri):
    """The id of `<experiments>-reports`, created beside the (first) training experiment's artifacts."""
    name = "+".join(experiments) + names.REPORTS_SUFFIX
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = client.get_experiment_by_name(experiments[0]).artifact_location
    local = not tracking_uri.startswith(("http://", "https://")) and "/" in location
    sibling = f"{location.rstrip('/').rsplit('/', 1)[0]}/{folder_name(name)}" if local else None  # inside the root
    return client.create_experiment(name, artifact_location=sibling)


def main(argv=None, reports_root=REPORTS_ROOT):
    parser = argparse.ArgumentParser(description=f"{names.REFERENCE} against the other frameworks, from MLflow runs")
    parser.add_argument("--experiment", action="append", required=True, help="may be given more than once")
    parser.add_argument("--tracking-uri", default=DEFAULT_TRACKING_URI)
    parser.add_argument("--out", type=Path, default=None,
                        help="default: reports/<experiment>[+<experiment>...]/, "
                             "characters other than [A-Za-z0-9._+-] as _")
    parser.add_argument("--format", default="md,html,csv")
    parser.add_argument("--run", default=None, help="parent run id for the per-class view (default: best config)")
    parser.add_argument("--margin-pp", type=float, default=0.2, help="equivalence margin for Δacc, percentage points")
    parser.add_argument("--multiplicity", choices=sorted(stats.MULTIPLICITY), default="bh",
                        help="per-config p-values: bh (false discovery rate, default), holm (family-wise), none")
    parser.add_argument("--parity-bound", type=float, default=PARITY_BOUND,
                        help="flag a config whose parity check's relative loss deviation is not below this")
    parser.add_argument("--stale-after", type=float, default=STALE_AFTER_S,
                        help="seconds without a heartbeat after which a RUNNING run counts as dead (STALE)")
    parser.add_argument("--no-log", action="store_true", help="do not log the report to MLflow")
    args = parser.parse_args(argv)
    formats = set(args.format.split(","))
    if not formats <= {"md", "html", "csv"}:
        parser.error(f"--format takes md, html and csv. Received: --format={args.format}")
    if not args.margin_pp > 0:
        parser.error(f"--margin-pp must be > 0. Received: --margin-pp={args.margin_pp}")
    if not args.parity_bound > 0:
        parser.error(f"--parity-bound must be > 0. Received: --parity-bound={args.parity_bound}")
    experiments = list(dict.fromkeys(args.experiment))
    out = args.out or output_folder("+".join(experiments), reports_root)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(args.tracking_uri)
    try:
        result = build(experiments, args.tracking_uri, out, run_id=args.run, stale_after_s=args.stale_after,
                       margin_pp=args.margin_pp, parity_bound=args.parity_bound, multiplicity=args.multiplicity)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.no_log:
        files, hint = write(result, out, formats), None
    else:
        files, hint = _logged(result, out, formats, args.tracking_uri)
    print("\n".join(summary(result, hint)))
    print(written_line(out, files, list(result.figures.values())))
    return 0


def _logged(result, out, formats, tracking_uri):
    """Write the report inside a run of the reports experiment, log its files there; (files, UI hint)."""
    client = mlflow.MlflowClient(tracking_uri)
    experiment_id = reports_experiment(client, result.experiments, tracking_uri)
    run = client.create_run(experiment_id, run_name="report", tags={names.ROLE: names.ROLE_REPORT})
    run_id, status = run.info.run_id, "FAILED"
    try:
        hint = names.view_hint(tracking_uri, experiment_id)
        files = write(result, out, formats, hint)
        client.log_param(run_id, "experiments", ",".join(result.experiments))
        client.log_param(run_id, "margin_pp", result.margin_pp)
        client.log_param(run_id, "parity_bound", result.parity_bound)
        client.log_param(run_id, "multiplicity", result.multiplicity)
        for path in files + list(result.figures.values()):
            client.log_artifact(run_id, str(path))
        status = "FINISHED"
    finally:
        client.set_terminated(run_id, status)
    return files, hint


if __name__ == "__main__":
    sys.exit(main())
