"""Exact McNemar tests per paired run: from the discordant counts the parent logged at training time
(names.MCNEMAR_B, _C, _N; no download), else from the frameworks' logged test predictions.

Each child logs names.PREDICTIONS (columns label, predicted, probability; one row per test image,
in the same order for every framework). They are downloaded once per child run into a cache
folder (the report's output folder, never the store) and reused by later reports.
"""

import shutil
import tempfile
from pathlib import Path

import mlflow
import pandas as pd

from experiments import names

from . import stats
from .runs import delta, mcnemar_column, others

COLUMNS = ("run_id", "vs", "b", "c", "n_test", "p")


def _stored_size(client, run_id):
    """The size in bytes the store records for the run's predictions file (None if it has none)."""
    return next((f.file_size for f in client.list_artifacts(run_id) if f.path == names.PREDICTIONS), None)


def predictions(client, run_id, cache):
    """(labels, predicted) of a child run, from `cache/<run_id>/` or downloaded there first; a cached
    file whose size is not the stored one (cut, overwritten) is downloaded again."""
    path = Path(cache) / run_id / names.PREDICTIONS
    if path.exists() and path.stat().st_size != _stored_size(client, run_id):
        path.unlink()
    if not path.exists():
        path.parent.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=path.parent.parent) as tmp:  # never a half-written cache entry
            client.download_artifacts(run_id, names.PREDICTIONS, tmp)
            path.parent.mkdir(exist_ok=True)
            shutil.move(str(Path(tmp) / names.PREDICTIONS), path)
    table = pd.read_csv(path).iloc[:, :2].to_numpy(dtype=int)  # label, predicted
    return table[:, 0], table[:, 1]


def _test(client, ids, cache):
    """The McNemar row of one run (child ids of REFERENCE and the other framework), or a note."""
    try:
        (labels, mine), (their_labels, theirs) = (predictions(client, run, cache) for run in ids)
    except Exception as exc:  # an old run without the artifact, an unreadable file
        return None, f"no {names.PREDICTIONS} ({type(exc).__name__}: {exc})"
    if len(labels) != len(their_labels) or (labels != their_labels).any():
        return None, "the two frameworks' predictions are not on the same test set"
    b, c = stats.discordant(labels, mine, theirs)
    return {"b": b, "c": c, "n_test": len(labels), "p": stats.mcnemar_p(b, c)}, None


def logged(pairs, other):
    """The McNemar rows of the runs whose parent logged the counts against `other` (a DataFrame of COLUMNS)."""
    b, c, n = (mcnemar_column(other, k) for k in (names.MCNEMAR_B, names.MCNEMAR_C, names.MCNEMAR_N))
    rows = pairs[pairs[delta(other)].notna() & pairs[b].notna() & pairs[c].notna()] if b in pairs else pairs.iloc[:0]
    return pd.DataFrame({"run_id": rows["run_id"].values, "vs": other, "b": rows[b].astype(int).values,
                         "c": rows[c].astype(int).values, "n_test": rows[n].astype("Int64").values,
                         "p": stats.mcnemar_p(rows[b].values, rows[c].values) if len(rows) else []},
                        columns=list(COLUMNS))


def tests(pairs, cache, tracking_uri=None):
    """(table, notes): per run with a Δacc sample and framework pair, b and c (the test images only
    REFERENCE, or only the other framework, classifies right), the test set size and the exact p-value;
    from the parent's logged counts, downloading the predictions only for runs that lack them."""
    client = mlflow.MlflowClient(tracking_uri)
    frames, rows, notes = [], [], []
    for other in others(pairs):
        frames.append(logged(pairs, other))
        done = set(frames[-1]["run_id"])
        for row in pairs[pairs[delta(other)].notna() & ~pairs["run_id"].isin(done)].to_dict("records"):
            result, note = _test(client, (row[f"{names.REFERENCE}_run"], row[f"{other}_run"]), cache)
            if note:
                notes.append(f"McNemar {names.REFERENCE} vs {other}, run {row['run_id']}: {note}")
            else:
                rows.append({"run_id": row["run_id"], "vs": other, **result})
    frames.append(pd.DataFrame(rows, columns=list(COLUMNS)))
    frames = [f for f in frames if len(f)]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(COLUMNS))
    return table, notes
