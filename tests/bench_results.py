"""Made-up benchmark results, and the rows of a printed table, for the benchmark's tests."""

import numpy as np

from benchmarks import tables

ALL = ["scratchnn", "keras", "keras-default", "torch", "gemm"]
PEERS = ["keras", "keras-default", "torch"]


def fake_results(frameworks, seed, configs=((1, 128, 32), (2, 256, 128)), threads=(1, 2)):
    rng = np.random.default_rng(seed)
    out = []
    for t in threads:
        for d, w, b in configs:
            for fw in frameworks:
                times = sorted(rng.uniform(0.2, 6.0, 3))
                out.append({"framework": fw, "threads": t, "depth": d, "width": w, "batch_size": b,
                            "s_epoch": times[1], "min": times[0], "max": times[2], "peak_mb": rng.uniform(0, 300),
                            "steps_timed": 469, "steps_per_epoch": 469, "data_mb": 179.4,
                            "cpu_per_wall": rng.uniform(0.9, 1.3)})
    return out


def printed_rows(text):
    head, *body = tables.parse_markdown(text)
    return [dict(zip(head, cells)) for cells in body]


def first_number(cell):
    return float(cell.split()[0])
