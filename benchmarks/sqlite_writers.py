"""How many concurrent writers the embedded sqlite store holds: N processes write to one
`sqlite:///` MLflow store at once, each as a sweep job does, as fast as they can.

    python -m benchmarks.sqlite_writers [--writers 1,2,4,8,16,32] [--runs 5] [--epochs 10] [--folder DIR]

Each writer opens `--runs` runs through MlflowClient; per run: create it with tags, log the
flattened config as params (one batch), one metrics batch per epoch plus a heartbeat tag, then end
it FINISHED. For each N it prints the writes per second over all writers, the median and the
slowest single write, and how many writes failed (`database is locked` once a write waited past
sqlite's busy timeout). A store is new for each N; its schema exists before the writers start.
"""

import argparse
import multiprocessing as mp
import statistics
import tempfile
import time
from pathlib import Path

PARAMS = 40  # about the flattened config's size
EPOCH_METRICS = ("train/loss", "train/acc", "val/loss", "val/acc", "epoch_time_s")


def _writer(uri, experiment_id, index, *, plan, ready, go, results):
    """One writer: warms up (imports, engine, a read), says it is ready, waits for `go`, then writes;
    puts (first write's start, last write's end, latencies in s, failure messages) on `results`."""
    import mlflow
    from mlflow.entities import Metric, Param, RunTag

    n_runs, epochs = plan
    client = mlflow.MlflowClient(uri)
    client.get_experiment(experiment_id)
    times, failures = [], []

    def timed(call, *a, **k):
        begin = time.perf_counter()
        try:
            result = call(*a, **k)
        except Exception as exc:  # noqa: BLE001  (what fails is what is measured)
            lines = str(exc).splitlines() or [""]
            root = next((line for line in lines if "database is locked" in line), lines[0])  # SQLAlchemy's asides first
            failures.append(f"{type(exc).__name__}: {root[:120]}")
            result = None
        times.append(time.perf_counter() - begin)
        return result

    ready.put(index)
    go.wait()
    began = time.time()
    for r in range(n_runs):
        run = timed(client.create_run, experiment_id, run_name=f"w{index}-r{r}", tags={"writer": str(index)})
        if run is None:
            continue
        run_id = run.info.run_id
        timed(client.log_batch, run_id, params=[Param(f"p{i}", str(i)) for i in range(PARAMS)])
        for epoch in range(epochs):
            now = int(time.time() * 1000)
            timed(client.log_batch, run_id, metrics=[Metric(m, 0.5, now, epoch) for m in EPOCH_METRICS],
                  tags=[RunTag("heartbeat", f"{time.time():.0f}")])
        timed(client.set_terminated, run_id, "FINISHED")
    results.put((began, time.time(), times, failures))


def measure(folder, writers, n_runs, epochs):
    import mlflow

    uri = f"sqlite:///{folder / f'w{writers}.db'}"
    experiment_id = mlflow.MlflowClient(uri).create_experiment("load", artifact_location=(folder / "art").as_uri())
    ctx = mp.get_context("spawn")
    ready, go, results = ctx.Queue(), ctx.Event(), ctx.Queue()
    processes = [ctx.Process(target=_writer, args=(uri, experiment_id, i),
                             kwargs={"plan": (n_runs, epochs), "ready": ready, "go": go, "results": results})
                 for i in range(writers)]
    for p in processes:
        p.start()
    for _ in processes:
        ready.get()
    go.set()  # every writer starts at once
    done = [results.get() for _ in processes]
    for p in processes:
        p.join()
    wall = max(end for _, end, _, _ in done) - min(began for began, _, _, _ in done)
    times = [t for _, _, ts, _ in done for t in ts]
    failures = [f for _, _, _, fs in done for f in fs]
    return {"writers": writers, "writes": len(times), "writes_per_s": len(times) / wall,
            "median_ms": 1e3 * statistics.median(times), "max_s": max(times), "failed": len(failures),
            "first_failure": failures[0] if failures else ""}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writers", default="1,2,4,8,16,32")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--folder", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        print(f"{'writers':>7} {'writes':>7} {'writes/s':>9} {'median ms':>10} {'slowest s':>10} {'failed':>7}")
        for n in (int(w) for w in args.writers.split(",")):
            row = measure(folder, n, args.runs, args.epochs)
            print(f"{row['writers']:>7} {row['writes']:>7} {row['writes_per_s']:>9.1f} {row['median_ms']:>10.1f} "
                  f"{row['max_s']:>10.2f} {row['failed']:>7}  {row['first_failure']}", flush=True)


if __name__ == "__main__":
    main()
