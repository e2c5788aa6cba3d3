"""Load experiments' runs from MLflow into one row per parent run (a config and a seed).

`load_pairs` returns a DataFrame with `experiment`, `run_id`, the parent's `status`, `reason`,
`failed_frameworks`, the config columns of `names.CONFIG_PARAMS` (params cast back to their types),
every other param under its own key (`optimizer.momentum`, `keras.jit_compile`, ...), `config_id`
(the same for the seeds of one config), `state`, and per framework present
`<fw>_acc`, `<fw>_loss`, `<fw>_fit_s`, `<fw>_status`, `<fw>_reason`, `<fw>_run` (the child's id),
and per framework other than REFERENCE `delta_pp_vs_<fw>` (percentage points),
`time_ratio_vs_<fw>` (fit time, REFERENCE / other), and the parent's parity check against it
(`parity_dev_vs_<fw>`, `parity_step_vs_<fw>`; `parity_steps` the steps it took). Runs from before
a key existed, and runs not checked, get NaN there.

A row is a sample for some frameworks (`samples`) if those children FINISHED and the parent
FINISHED, or FAILED only because other frameworks failed (its `failed_frameworks` tag). `state`
says what became of the whole run: "failed" (the parent or a child FAILED, KILLED or went STALE),
else "running" (the parent or a child still RUNNING), else "finished". STALE is a RUNNING run whose
heartbeat tag (its start for runs from before heartbeats) is older than `stale_after_s`.
"""

import functools
import operator
import time

import mlflow
import numpy as np
import pandas as pd

from experiments import names

from . import store

LIVE = ("RUNNING", "SCHEDULED")
STALE_AFTER_S = names.STALE_AFTER_S  # one owner: experiments.names
INTEGER = frozenset({"depth", "width", "batch_size", "epochs", "seed"})  # names.CONFIG_PARAMS columns by type
NUMBER = frozenset({"lr", "dropout", "l2"})
NUMERIC = (INTEGER | NUMBER) - {"seed"}  # the config keys a figure can put on an axis
METRICS = {"acc": names.TEST_ACC, "loss": names.TEST_LOSS, "fit_s": names.FIT_TIME}
NOT_RUNS = (names.ROLE_REPORT, names.ROLE_BENCHMARK)  # runs in a training experiment that are no config
PARITY_BOUND = names.PARITY_BOUND
PARITY_STEPS = "parity_steps"  # the top-level param: how many steps the parity check takes


class ReportError(RuntimeError):
    """An experiment is missing, empty, or holds no paired runs; the message says which."""


def tag(name):
    return f"tags.{name}"


def delta(other):
    """The column of REFERENCE's accuracy minus `other`'s, in percentage points."""
    return f"delta_pp_vs_{other}"


def ratio(other):
    """The column of REFERENCE's fit time over `other`'s."""
    return f"time_ratio_vs_{other}"


def mcnemar_column(other, count):
    """The column of a parent's logged McNemar count (names.MCNEMAR_B, _C or _N) against `other`."""
    return f"{count}_vs_{other}"


def parity_dev(other):
    """The column of the parity check's largest relative per-step loss deviation of `other` from REFERENCE."""
    return f"parity_dev_vs_{other}"


def parity_step(other):
    """The column of the first step whose deviation was over the bound (logged only when there was one)."""
    return f"parity_step_vs_{other}"


def frameworks(rows):
    """The frameworks present in `rows`, in names.FRAMEWORKS order."""
    return [fw for fw in names.FRAMEWORKS if f"{fw}_status" in rows]


def others(rows):
    """The frameworks REFERENCE is compared against (none if REFERENCE itself is absent)."""
    present = frameworks(rows)
    return [fw for fw in present if fw != names.REFERENCE] if names.REFERENCE in present else []


def search(experiments, tracking_uri=None):
    """All runs of the named experiments (a name or a list) as mlflow.search_runs gives them, with
    an `experiment` column; report and benchmark runs are left out."""
    experiments = [experiments] if isinstance(experiments, str) else list(experiments)
    client = mlflow.MlflowClient(tracking_uri)
    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    frames = []
    for experiment in experiments:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            known = sorted(e.name for e in client.search_experiments())
            raise ReportError(f"no experiment named {experiment!r} in {client.tracking_uri}; there are: {known}")
        df = store.runs(client, found.experiment_id)
        if df.empty:
            raise ReportError(f"experiment {experiment!r} has no runs")
        frames.append(df.assign(experiment=experiment, experiment_id=found.experiment_id))
    df = pd.concat(frames, ignore_index=True)
    for name in (names.ROLE, names.FRAMEWORK, names.PARENT, names.FAILURE_REASON, names.CONFIG_ID,
                 names.FAILED_FRAMEWORKS, names.HEARTBEAT, names.FRAMEWORKS_TAG):
        if tag(name) not in df:
            df[tag(name)] = pd.Series(np.nan, index=df.index, dtype=object)
    return df[~df[tag(names.ROLE)].isin(NOT_RUNS)].reset_index(drop=True)


def _cast(series, column):
    if column in INTEGER | NUMBER:
        return pd.to_numeric(series, errors="coerce").astype("Int64" if column in INTEGER else float)
    return series.astype("string")


def is_failure(status):
    """FAILED, KILLED, STALE: any status but FINISHED and the live ones (and no run at all)."""
    return isinstance(status, str) and status not in ("FINISHED",) + LIVE


def samples(rows, frameworks_=None):
    """The rows that count as seed samples for `frameworks_` (default: every framework present)."""
    wanted = list(frameworks_ or frameworks(rows))
    parent_ok = (rows["status"] == "FINISHED").to_numpy(dtype=bool, copy=True)
    failed = (rows["status"] == "FAILED").to_numpy(dtype=bool)  # a sample if only frameworks not wanted failed
    parent_ok[failed] = [isinstance(s, str) and bool(s) and not set(s.split(",")) & set(wanted)
                         for s in rows["failed_frameworks"].to_numpy(dtype=object)[failed]]
    parent_ok = pd.Series(parent_ok, index=rows.index)
    if "state" in rows:
        parent_ok &= rows["state"] != "pruned"  # a config a search stopped early: counted apart, never a sample
    return functools.reduce(operator.and_, [rows[f"{fw}_status"] == "FINISHED" for fw in wanted], parent_ok)


def with_liveness(df, now=None, stale_after_s=STALE_AFTER_S):
    """`df` with RUNNING runs silent for longer than `stale_after_s` as STALE, with a reason."""
    started = (df["start_time"] - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    beat = pd.to_numeric(df[tag(names.HEARTBEAT)], errors="coerce").fillna(started)
    silent = (time.time() if now is None else now) - beat
    stale = (df["status"] == "RUNNING") & (silent > stale_after_s)
    df = df.copy()
    reason = tag(names.FAILURE_REASON)
    df.loc[stale, "status"] = "STALE"
    df.loc[stale, reason] = df.loc[stale, reason].fillna(
        silent[stale].map(lambda s: f"no heartbeat for {s:.0f} s: the process running it is gone"))
    return df


def _params(parents, children):
    """Every param of each parent, taken from its children where the parent has none (older runs)."""
    columns = [c for c in parents.columns if c.startswith("params.")]
    own = parents.set_index("run_id")[columns]
    inherited = children.groupby(tag(names.PARENT))[columns].first().reindex(own.index)
    merged = own.combine_first(inherited)[columns]
    return merged.rename(columns=lambda c: c[len("params."):]).reset_index(drop=True)


def _config(rows, params):
    """The typed config columns, the other params by key, and config_id."""
    by_param = {param: column for column, param in names.CONFIG_PARAMS.items()}
    keys = (k for k in params.columns if (k in by_param or "." in k) and k not in names.MACHINE_PARAMS)
    for key in keys:  # top-level switches are no config, and where files are on one machine is none either
        column = by_param.get(key, key)
        rows[column] = _cast(params[key], column) if key in by_param else params[key].values
    for column in names.CONFIG_PARAMS:
        if column not in rows:
            rows[column] = _cast(pd.Series(np.nan, index=rows.index, dtype=object), column)
    keys = [c for c in names.CONFIG_PARAMS if c != "seed"]
    fallback = rows[keys].astype(object).apply(lambda r: "|".join(str(v) for v in r if pd.notna(v)), axis=1)
    rows["config_id"] = rows["config_id"].fillna(fallback) if len(rows) else rows["config_id"]


def _children(rows, children):
    """Per framework present: status, reason, child id and final metrics of each parent's child."""
    for fw in names.FRAMEWORKS:
        mine = children[children[tag(names.FRAMEWORK)] == fw]
        asked = rows["asked"].fillna("").str.split(",").map(lambda listed, fw=fw: fw in listed)
        if mine.empty and not asked.any():
            continue
        mine = mine.set_index(tag(names.PARENT))
        mine = mine[~mine.index.duplicated(keep="last")].reindex(rows.run_id)
        rows[f"{fw}_status"] = mine["status"].values
        rows[f"{fw}_reason"] = mine[tag(names.FAILURE_REASON)].values
        rows[f"{fw}_run"] = mine["run_id"].values
        for name, metric in METRICS.items():
            rows[f"{fw}_{name}"] = mine[f"metrics.{metric}"].values if f"metrics.{metric}" in mine else np.nan


def load_pairs(df, now=None, stale_after_s=STALE_AFTER_S):
    """One row per parent run: its config beside each framework's results, and the paired differences."""
    df = with_liveness(df, now, stale_after_s)
    children = df[df[tag(names.FRAMEWORK)].isin(names.FRAMEWORKS) & df[tag(names.PARENT)].notna()]
    parents = (df[df[tag(names.FRAMEWORK)].isna() & df[tag(names.PARENT)].isna()]
               .sort_values("start_time", kind="stable"))
    if parents.empty:
        raise ReportError("no paired runs (parent runs with a child per framework) in this experiment")
    rows = pd.DataFrame({"experiment": parents["experiment"].values, "experiment_id": parents["experiment_id"].values,
                         "run_id": parents.run_id.values, "status": parents.status.values,
                         "reason": parents[tag(names.FAILURE_REASON)].values,
                         "failed_frameworks": parents[tag(names.FAILED_FRAMEWORKS)].values,
                         "asked": parents[tag(names.FRAMEWORKS_TAG)].values,
                         "config_id": parents[tag(names.CONFIG_ID)].values})
    params = _params(parents, children)
    _config(rows, params)
    _children(rows, children)
    _parity(rows, parents, params)
    _logged_pairing(rows, parents)
    statuses = [rows["status"]] + [rows[f"{fw}_status"] for fw in frameworks(rows)]
    failed = functools.reduce(operator.or_, [s.map(is_failure) for s in statuses])
    running = functools.reduce(operator.or_, [s.isin(LIVE) for s in statuses])
    pruned = parents[tag(names.PRUNED)].notna().values if tag(names.PRUNED) in parents else False  # a search's pruner
    rows["state"] = np.select([pruned, failed, running], ["pruned", "failed", "running"], "finished")
    for other in others(rows):
        ok = samples(rows, [names.REFERENCE, other])
        reference = rows[f"{names.REFERENCE}_acc"], rows[f"{names.REFERENCE}_fit_s"]
        rows[delta(other)] = np.where(ok, 100 * (reference[0] - rows[f"{other}_acc"]), np.nan)
        rows[ratio(other)] = np.where(ok, reference[1] / rows[f"{other}_fit_s"], np.nan)
    return _ordered(rows)


def _logged_pairing(rows, parents):
    """Each parent's McNemar counts per framework compared (NaN for runs from before they were logged),
    and its BLAS library as one text (`openblas 0.3.31 Haswell`), NaN when not recorded."""
    for other in others(rows):
        for count in (names.MCNEMAR_B, names.MCNEMAR_C, names.MCNEMAR_N):
            key = f"metrics.{names.versus(other, count)}"
            rows[mcnemar_column(other, count)] = parents[key].values.astype(float) if key in parents else np.nan
    found = [parents[tag(t)] if tag(t) in parents else pd.Series(np.nan, index=parents.index) for t in names.BLAS_TAGS]
    text = [" ".join(str(v) for v in values if pd.notna(v)) or np.nan for values in zip(*found)]
    rows["blas"] = text if len(parents) else np.nan


def _parity(rows, parents, params):
    """Each parent's parity metrics per framework compared (NaN when not checked), and its parity_steps."""
    for other in others(rows):
        for column, metric in ((parity_dev(other), names.PARITY_DEV), (parity_step(other), names.PARITY_STEP)):
            key = f"metrics.{names.parity(other, metric)}"
            rows[column] = parents[key].values.astype(float) if key in parents else np.nan
    steps = params[PARITY_STEPS] if PARITY_STEPS in params else pd.Series(np.nan, index=rows.index)
    rows[PARITY_STEPS] = pd.to_numeric(steps, errors="coerce").values


def _ordered(rows):
    """Rows by experiment (in the order asked for), then by each varying config key, then seed."""
    keys = {"experiment": rows["experiment"].map({e: i for i, e in enumerate(dict.fromkeys(rows["experiment"]))})}
    for column in config_columns(rows)[1 if "experiment" in config_columns(rows) else 0:] + ["seed"]:
        numeric = pd.to_numeric(rows[column], errors="coerce")
        keys[column] = numeric if numeric.notna().sum() == rows[column].notna().sum() else rows[column].astype(str)
    order = pd.DataFrame(keys).sort_values(list(keys), kind="stable", na_position="last").index
    return rows.loc[order].reset_index(drop=True)


def config_columns(rows):
    """The config keys that vary: `experiment` when there are several, each names.CONFIG_PARAMS
    column (seed aside) with more than one value, then any other param that is constant within
    every config and varies between the configs of one experiment (e.g. `keras.jit_compile`)."""
    columns = ["experiment"] if rows["experiment"].nunique() > 1 else []
    columns += [c for c in names.CONFIG_PARAMS if c != "seed" and rows[c].nunique(dropna=False) > 1]
    keys = [c for c in rows.columns if "." in c]
    values = rows[keys].astype(str)
    per_config = values.groupby([rows["experiment"], rows["config_id"]]).nunique().max()
    per_experiment = values.groupby(rows["experiment"]).nunique().max()
    return columns + [key for key in keys if per_config[key] == 1 and per_experiment[key] > 1]


def settings(rows, frameworks_=None):
    """{framework: {param: [distinct values]}} of the params named after a framework (`keras.jit_compile`)."""
    found = {}
    for fw in frameworks_ or frameworks(rows):
        keys = sorted(c for c in rows.columns if c.startswith(f"{fw}."))
        found.update({fw: {k[len(fw) + 1:]: sorted(rows[k].dropna().astype(str).unique()) for k in keys}}
                     if keys else {})
    return found


def value_text(value):
    """A config value as a short string: 0.1 not 0.1000, 64 not 64.0, n/a for a missing value."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return "n/a"
    return f"{value:g}" if isinstance(value, (float, np.floating)) else str(value)


def label(record, columns):
    """A config named by its varying keys (`width=64, batch_size=32`); by every config key when none varies."""
    columns = columns or [c for c in names.CONFIG_PARAMS if c != "seed" and pd.notna(record.get(c))]
    return ", ".join(f"{c}={value_text(record[c])}" for c in columns)
