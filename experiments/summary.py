"""What a config's run says when it ends: its result line, and how to view its runs.

The runner writes the result line as the parent run's description; the supervising process
prints it (with the MLflow UI page of the run), and a sweep prints how to view all its runs.
"""

import logging

from . import names, ui_links


def summary_line(metrics):
    """Every framework's test accuracy, then Δacc and time ratio of scratchnn against each other one."""
    accs = [(fw, metrics[names.of(fw, names.TEST_ACC)]) for fw in names.FRAMEWORKS
            if names.of(fw, names.TEST_ACC) in metrics]
    parts = [f"{fw} test acc {acc:.2%}" for fw, acc in accs]
    for fw, _ in accs:
        if names.versus(fw, names.TIME_RATIO) in metrics:
            delta = round(metrics[names.versus(fw, names.ACC_DELTA_PP)], 2) + 0.0  # never "-0.00"
            parts.append(f"vs {fw}: delta {delta:+.2f} pp, time ratio "
                         f"{metrics[names.versus(fw, names.TIME_RATIO)]:.2f}")
    return " | ".join(parts)


def view_hint(tracking_uri, experiment_id=None, page=None):
    """`view: ` and how to open the runs, or `page` (names.view_hint)."""
    return "view: " + names.view_hint(tracking_uri, experiment_id, page)


def report(cfg, metrics, *, hint):
    """The result line: on the terminal and in the job's train.log (Hydra's logging config); the
    command to view the runs with it if `hint` (a sweep gives it once, at its end)."""
    log = logging.getLogger("scratchnn")
    if metrics.get("skipped"):
        log.info(f"skipped: {metrics['skipped']}")
    else:
        page = _compare_page(metrics)
        view = [view_hint(cfg.mlflow.tracking_uri, metrics.get("experiment_id"), page)] if hint else []
        log.info(" | ".join([summary_line(metrics), *view]))


def _compare_page(metrics):
    """The MLflow UI page of a finished single run: its frameworks' children side by side (ui_links.run_link)."""
    if not metrics.get("experiment_id"):
        return None
    children = list(metrics.get("child_runs", {}).values())
    return ui_links.run_link(metrics["experiment_id"], metrics["parent_run_id"], children)
