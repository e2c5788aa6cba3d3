"""What the harness writes for the MLflow UI, by run and experiment id (MlflowClient, never an active
run): each run's three data sets as dataset inputs (the runs table's Dataset column), and a sweep's
saved view of the comparison (experiments/ui_links.py has its format)."""

import time

from mlflow.data import from_numpy
from mlflow.entities import DatasetInput, InputTag
from mlflow.exceptions import MlflowException

from . import names, ui_links
from .signals import deferred


def dataset_inputs(data, name):
    """DatasetInputs of the runner's sets (train, val if any, test): each a name, a digest and the arrays'
    shapes, computed by mlflow.data.from_numpy; no copy of the arrays is stored. (The entity is made as
    mlflow.log_input makes it, which would need an active run.)"""
    inputs = []
    for split, context in names.DATASET_CONTEXTS.items():
        if data.get(split) is None:
            continue
        X, y = data[split]
        dataset = from_numpy(X, targets=y, name=f"{name}-{split}")
        inputs.append(DatasetInput(dataset._to_mlflow_entity(), tags=[InputTag(names.DATASET_CONTEXT, context)]))
    return inputs


LOG_INPUTS_ATTEMPTS = 3


def log_inputs(client, run_id, inputs, attempts=LOG_INPUTS_ATTEMPTS):
    """Log the run's dataset inputs. A store adds a data set to an experiment by looking for it and
    inserting it if absent, so two jobs of a sweep that log the same data set at the same moment
    both insert it and the later fails its unique key (sqlite: `UNIQUE constraint failed: datasets...`).
    That write was rolled back whole; written again, it finds the data set and links the run to it."""
    for attempt in range(1, attempts + 1):
        try:
            with deferred():
                client.log_inputs(run_id, datasets=inputs)
            return
        except MlflowException:
            if attempt == attempts:
                raise
            time.sleep(0.05 * attempt)


def save_comparison_view(client, experiment_id, swept_keys, frameworks):
    """Write (or refresh) the experiment's saved view of the comparison; returns the page that opens it."""
    experiment = client.get_experiment(experiment_id)
    state = ui_links.comparison_state(list(swept_keys), list(frameworks))
    tag = names.SHARED_VIEW + ui_links.view_key(state)
    value = ui_links.saved_view(f"{experiment.name}: {' vs '.join(frameworks)}", state, int(time.time() * 1000),
                                experiment.tags.get(tag))
    client.set_experiment_tag(experiment_id, tag, value)
    return ui_links.view_page(experiment_id, ui_links.view_key(state))
