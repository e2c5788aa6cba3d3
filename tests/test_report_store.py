"""compare/store.py: a SQL store's runs, read from its tables in one query each, are the frame
mlflow.search_runs gives (the same columns, values, types and order of rows)."""

import math

import mlflow
import pandas as pd

from compare import store
from stores import synthetic_store


def test_a_sql_store_s_runs_are_the_frame_search_runs_gives(tmp_path):
    uri = synthetic_store(tmp_path)
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("synthetic").experiment_id
    listed = client.search_runs([experiment], max_results=1000)
    client.log_metric(listed[0].info.run_id, "odd", math.nan)  # a NaN metric: stored as is_nan
    client.log_metric(listed[1].info.run_id, "odd", math.inf)
    client.set_tag(listed[2].info.run_id, "only_here", "x")
    client.delete_run(listed[3].info.run_id)  # a deleted run is no run of the experiment
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)  # search_runs reads the global URI; put back below for the other tests
    try:
        expected = mlflow.search_runs([experiment], max_results=100000)
    finally:
        mlflow.set_tracking_uri(before)
    found = store.runs(client, experiment)
    assert store.sql_engine(client.tracking_uri) is not None and len(found) == len(listed) - 1
    assert sorted(found.columns) == sorted(expected.columns)
    pd.testing.assert_frame_equal(found, expected[list(found.columns)], check_exact=True)


def test_a_store_without_runs_gives_no_rows(tmp_path):
    uri = synthetic_store(tmp_path)
    client = mlflow.MlflowClient(uri)
    assert store.runs(client, client.create_experiment("empty")).empty
