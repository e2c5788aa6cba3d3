"""An experiment's runs as `mlflow.search_runs` gives them (one row per active run, newest first; `run_id`,
`experiment_id`, `status`, `artifact_uri`, `start_time`, `end_time`, then `metrics.<key>` (latest values),
`params.<key>` and `tags.<key>`), the columns of each kind by key.

A sqlite store (`sqlite:///` URI, the default) is read with one query per table of MLflow's schema (runs,
latest metrics, params, tags) and the frame built from them at once, instead of an object per run,
param, tag and metric; any other store (a tracking server, PostgreSQL, a folder) goes through
`mlflow.search_runs`. tests/test_report_store.py checks that both give the same frame, so a change of
MLflow's schema fails there.
"""

import mlflow
import numpy as np
import pandas as pd

from experiments.locations import sqlite_file

ACTIVE = "active"  # mlflow.entities.LifecycleStage.ACTIVE: the runs search_runs shows by default
MINE = "experiment_id = {experiment:d} AND lifecycle_stage = '" + ACTIVE + "'"  # an int id: nothing to quote
RUNS = ("SELECT run_uuid, experiment_id, status, artifact_uri, start_time, end_time FROM runs "
        "WHERE " + MINE + " ORDER BY start_time DESC, run_uuid")
OF_RUNS = ("SELECT t.run_uuid, t.key, {values} FROM {table} t "  # t.key: `key` is reserved in MySQL
           "WHERE t.run_uuid IN (SELECT run_uuid FROM runs WHERE " + MINE + ")")
TABLES = {"metrics": ("latest_metrics", "t.value, t.is_nan"), "params": ("params", "t.value"),
          "tags": ("tags", "t.value")}


def sql_engine(tracking_uri):
    """A SQLAlchemy engine on a `sqlite:///` store (its URI is a SQLAlchemy URL), else None."""
    if sqlite_file(tracking_uri) is None:
        return None
    import sqlalchemy  # MLflow's own dependency for such stores

    return sqlalchemy.create_engine(tracking_uri, poolclass=sqlalchemy.pool.NullPool)


def _columns(rows, kind, position):
    """{`<kind>.<key>`: one value per run} from the (run_uuid, key, value[, is_nan]) rows of one kind; a
    missing metric is NaN, a missing param or tag None, as search_runs has them."""
    empty = np.nan if kind == "metrics" else None
    found, nan = {}, kind == "metrics"
    for row in rows:
        if row[1] not in found:
            found[row[1]] = [empty] * len(position)
        found[row[1]][position[row[0]]] = float("nan") if nan and row[3] else row[2]
    return {f"{kind}.{key}": found[key] for key in sorted(found)}


def _time(ms):
    return pd.to_datetime(pd.Series(ms, dtype=float), unit="ms", utc=True)


def _fetch(connection, query):
    cursor = connection.cursor()
    try:
        cursor.execute(query)
        return cursor.fetchall()
    finally:
        cursor.close()


def _from_sql(engine, experiment_id):
    """The frame from the store's tables, through the database driver's own cursor (no object per row)."""
    experiment = int(experiment_id)
    connection = engine.raw_connection()
    try:
        runs = _fetch(connection, RUNS.format(experiment=experiment))
        found = {kind: _fetch(connection, OF_RUNS.format(table=table, values=values, experiment=experiment))
                 for kind, (table, values) in TABLES.items()}
    finally:
        connection.close()
    position = {r[0]: i for i, r in enumerate(runs)}
    data = {"run_id": [r[0] for r in runs], "experiment_id": [str(r[1]) for r in runs],
            "status": [r[2] for r in runs], "artifact_uri": [r[3] for r in runs]}
    data |= {"start_time": _time([r[4] for r in runs]), "end_time": _time([r[5] for r in runs])}
    for kind in TABLES:
        data |= _columns(found[kind], kind, position)
    return pd.DataFrame(data)


def runs(client, experiment_id):
    """The experiment's active runs (see the module docstring)."""
    engine = sql_engine(client.tracking_uri)
    if engine is None:
        return mlflow.search_runs([experiment_id], max_results=100000)
    try:
        return _from_sql(engine, experiment_id)
    finally:
        engine.dispose()
