"""python -m benchmarks.report_store [--folder DIR] [--no-counts] [--seeds 3] [--skip-build]

The report at grid scale: builds a synthetic store in the harness's layout (the standard grid,
243 configs x 3 seeds x scratchnn and Keras: parents with the flattened config, tags, final metrics,
Δacc, time ratio and, unless --no-counts, McNemar's counts; children with per-epoch and final
metrics and their 10,000 test predictions and confusion matrix as artifacts), then times
`python -m compare.report` on it twice in fresh processes: cold (an empty output folder, so no
cached predictions) and warm (the same folder again). Prints wall and CPU seconds of each.
A benchmark, not a test: the figures depend on the machine and its load.
"""

import argparse
import itertools
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlflow
import numpy as np
from mlflow.entities import Metric, Param, RunTag
from omegaconf import OmegaConf

from experiments import artifacts, blas, names, pairing, tracking

GRID = {"model.depth": (1, 2, 3), "model.width": (64, 128, 256), "model.activation": ("relu", "tanh", "sigmoid"),
        "train.batch_size": (32, 128, 512), "optimizer.lr": (0.01, 0.03, 0.1)}  # conf/sweep/grid.yaml
FRAMEWORKS, N_TEST, EPOCHS, EXPERIMENT = ("scratchnn", "keras"), 10_000, 5, "sweep-grid"


def base_config(uri):
    """The harness's config (conf/, as Hydra composes it) for the grid, as a sweep job would log it."""
    from hydra import compose, initialize_config_dir

    from experiments.config import CONF_DIR, register_configs
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=["+sweep=grid", "frameworks=[scratchnn,keras]", "data.dir=/data/mnist-files",
                                            f"mlflow.tracking_uri={uri}"])


def predictions(labels, wrong, rng):
    """Predicted classes with `wrong` random test images misclassified."""
    predicted = labels.copy()
    miss = rng.choice(len(labels), wrong, replace=False)
    predicted[miss] = (labels[miss] + 1 + rng.integers(0, 9, wrong)) % 10
    return predicted


def predictions_csv(labels, predicted):
    """predictions.csv as the harness writes it (label, predicted, probability), as bytes."""
    rows = np.frombuffer(b"0,0,0.900000\n" * len(labels), dtype=np.uint8).reshape(len(labels), -1).copy()
    rows[:, 0], rows[:, 2] = 48 + labels, 48 + predicted
    return b"label,predicted,probability\n" + rows.tobytes()


def _child(client, experiment, parent, *, fw, params, base_tags, result, folder):
    acc, fit, csv = result
    run = client.create_run(experiment, run_name=fw, tags={**base_tags, names.FRAMEWORK: fw, names.PARENT: parent})
    history = [Metric(names.EPOCH_METRICS[k], v, 0, e) for e in range(EPOCHS)
               for k, v in (("loss", 1 / (e + 2)), ("accuracy", acc - 0.01 * (EPOCHS - e)), ("val_loss", 1 / (e + 2)),
                            ("val_accuracy", acc - 0.01 * (EPOCHS - e)), ("epoch_time", fit / EPOCHS))]
    final = [Metric(k, v, 0, 0) for k, v in ((names.TEST_ACC, acc), (names.TEST_LOSS, 1 - acc), (names.FIT_TIME, fit),
                                             (names.WARMUP_TIME, 0.5), (names.PREDICT_TIME, 0.1))]
    client.log_batch(run.info.run_id, metrics=history + final, params=[Param(k, str(v)) for k, v in params.items()])
    labels, predicted = csv
    (folder / names.PREDICTIONS).write_bytes(predictions_csv(labels, predicted))
    np.savetxt(folder / names.CONFUSION, artifacts.confusion_matrix(labels, predicted, 10), fmt="%d", delimiter=",")
    client.log_artifacts(run.info.run_id, str(folder))
    client.set_terminated(run.info.run_id, "FINISHED")


def build(folder, counts, seeds, rng, *, configs=None):
    """The store `folder/mlflow.db` (artifacts in `folder/artifacts`), experiment EXPERIMENT: one parent per
    config (the first `configs` of the grid; None: all) and seed, with a child per framework; returns its URI."""
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment(EXPERIMENT, artifact_location=(folder / "artifacts").as_uri())
    cfg = base_config(uri)
    labels = rng.integers(0, 10, N_TEST)
    env = {**tracking.environment_tags(), **blas.tags(), names.HEARTBEAT_S: "30"}
    with tempfile.TemporaryDirectory() as tmp:
        for values in itertools.islice(itertools.product(*GRID.values()), configs):
            for key, value in zip(GRID, values):
                OmegaConf.update(cfg, key, value)
            shift = rng.normal(0, 0.3)  # the config's true Δacc, pp
            for seed in range(seeds):
                OmegaConf.update(cfg, "train.seed", seed)
                config_hash, config_id = tracking.config_hashes(cfg)
                params = tracking.flatten(OmegaConf.to_container(cfg, resolve=True))
                params[names.OPTIMIZER_NAME] = "sgd"
                base = {**env, names.CONFIG_HASH: config_hash, names.CONFIG_ID: config_id, names.JOB: ""}
                parent = client.create_run(experiment, run_name="grid", tags={
                    **base, names.ROLE: names.ROLE_PARENT, names.FRAMEWORKS_TAG: ",".join(FRAMEWORKS)}).info.run_id
                wrong = {"keras": int(rng.integers(150, 400))}
                wrong["scratchnn"] = max(0, int(wrong["keras"] - shift * 100 + rng.normal(0, 30)))
                results, predicted = {}, {}
                for fw in FRAMEWORKS:
                    predicted[fw] = predictions(labels, wrong[fw], rng)
                    results[fw] = (1 - wrong[fw] / N_TEST, float(rng.uniform(5, 60)), (labels, predicted[fw]))
                    _child(client, experiment, parent, fw=fw, params=params, base_tags=base,
                           result=results[fw], folder=Path(tmp))
                metrics = {names.of(fw, names.TEST_ACC): r[0] for fw, r in results.items()}
                metrics |= {names.of(fw, names.FIT_TIME): r[1] for fw, r in results.items()}
                metrics[names.versus("keras", names.ACC_DELTA_PP)] = (
                    100 * (results["scratchnn"][0] - results["keras"][0]))
                metrics[names.versus("keras", names.TIME_RATIO)] = results["scratchnn"][1] / results["keras"][1]
                if counts:
                    metrics |= pairing.metrics(labels, predicted)
                client.log_batch(parent, metrics=[Metric(k, float(v), 0, 0) for k, v in metrics.items()],
                                 params=[Param(k, str(v)) for k, v in params.items()],
                                 tags=[RunTag(names.NOTE, "synthetic")])
                client.log_text(parent, OmegaConf.to_yaml(cfg, resolve=True), names.CONFIG_FILE)
                client.set_terminated(parent, "FINISHED")
    return uri


def timed_report(uri, out):
    """(wall s, CPU s) of one `python -m compare.report` process on the store."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "compare.report", "--experiment", EXPERIMENT, "--tracking-uri", uri,
                    "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "scratchnn-report-store")
    parser.add_argument("--no-counts", action="store_true", help="parents without McNemar counts (older stores)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--configs", type=int, default=None, help="only the grid's first CONFIGS configs")
    parser.add_argument("--skip-build", action="store_true", help="time the report on the store already there")
    args = parser.parse_args(argv)
    args.folder.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{args.folder / 'mlflow.db'}"
    if not args.skip_build:
        start = time.perf_counter()
        build(args.folder, not args.no_counts, args.seeds, np.random.default_rng(0), configs=args.configs)
        print(f"built {uri}: {args.configs or 3 ** len(GRID)} configs x {args.seeds} seeds x {len(FRAMEWORKS)} "
              f"frameworks in {time.perf_counter() - start:.0f} s")
    out = Path(tempfile.mkdtemp(prefix="report-", dir=args.folder))
    for label in ("cold", "warm"):
        wall, cpu = timed_report(uri, out)
        print(f"compare.report {label}: {wall:.1f} s wall, {cpu:.1f} s CPU (out: {out})")


if __name__ == "__main__":
    main()
