"""Pages of the MLflow UI (3.x) that open on the comparison, and the saved view a sweep writes.
Standard library only. The page formats are those of MLflow 3.17's UI:

- a run's frameworks side by side: `#/compare-runs?runs=[ids]&experiments=[id]` (runs first);
- a run, and the runs table, in model-training mode: `?workflowType=machine_learning`;
- a saved view of the runs table: the experiment tag `mlflow.sharedViewState.<key>` holding
  {"name", "createdAt", "updatedAt", "state"} (times in ms, `state` a JSON string of the table's
  settings), opened by `#/experiments/<id>/runs?workflowType=machine_learning&viewStateShareKey=<key>`.
"""

import hashlib
import json

from . import names

WORKFLOW = "workflowType=machine_learning"
PARAM_WIDTH, METRIC_WIDTH = 120, 190  # pixels: a metric's full name and its value readable in the table


def runs_page(experiment_id):
    return f"/#/experiments/{experiment_id}/runs?{WORKFLOW}"


def run_page(experiment_id, run_id):
    return f"/#/experiments/{experiment_id}/runs/{run_id}?{WORKFLOW}"


def compare_page(experiment_id, run_ids):
    """The compare page of `run_ids` (params and metrics side by side, a diff toggle, parallel coordinates)."""
    compact = {"separators": (",", ":")}
    return (f"/#/compare-runs?runs={json.dumps([str(r) for r in run_ids], **compact)}"
            f"&experiments={json.dumps([str(experiment_id)], **compact)}&{WORKFLOW}")


def run_link(experiment_id, parent_id, child_ids):
    """Where a single run's last line points: its frameworks' children compared, or with one framework its run."""
    return compare_page(experiment_id, child_ids) if len(child_ids) >= 2 else run_page(experiment_id, parent_id)


def view_page(experiment_id, key):
    return f"{runs_page(experiment_id)}&viewStateShareKey={key}"


def column(kind, key):
    """A column of the runs table: kind is params, metrics, tags or attributes (`metrics.\\`test/acc\\``)."""
    return f"{kind}.`{key}`"


def param_of(swept_key):
    """The logged param a swept key is read from: a config key is its own param; the optimizer group its name."""
    return names.OPTIMIZER_NAME if swept_key == "optimizer" else swept_key


def comparison_state(swept_keys, frameworks):
    """The runs table of a sweep as a flat table of its parent runs (one a config and seed): the swept params,
    each framework's test accuracy, then Δacc and time ratio of REFERENCE against each other framework,
    best REFERENCE (else first framework) accuracy first."""
    others = [fw for fw in frameworks if fw != names.REFERENCE] if names.REFERENCE in frameworks else []
    metrics = [names.of(fw, names.TEST_ACC) for fw in frameworks]
    metrics += [names.versus(fw, m) for fw in others for m in (names.ACC_DELTA_PP, names.TIME_RATIO)]
    first = names.REFERENCE if names.REFERENCE in frameworks else frameworks[0]
    params, metrics = [column("params", param_of(k)) for k in swept_keys], [column("metrics", m) for m in metrics]
    return {"selectedColumns": [*params, *metrics], "columnOrder": [*params, *metrics],  # widths need an order
            "columnWidths": {**{c: PARAM_WIDTH for c in params}, **{c: METRIC_WIDTH for c in metrics}},
            "orderByKey": column("metrics", names.of(first, names.TEST_ACC)), "orderByAsc": False,
            "searchFilter": f"tags.{names.ROLE} = '{names.ROLE_PARENT}'"}


def view_key(state):
    """The share key of a saved view: it follows from the state, so a sweep run again keeps one view."""
    return "comparison-" + hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:12]


def saved_view(name, state, now_ms, previous=None):
    """The tag value of a saved view; `previous` (the tag's old value) keeps its creation time."""
    created = json.loads(previous).get("createdAt", now_ms) if previous else now_ms
    return json.dumps({"name": name, "createdAt": created, "updatedAt": now_ms,
                       "state": json.dumps(state, sort_keys=True)})
