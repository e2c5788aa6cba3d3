"""The report's files: Markdown, HTML and CSV tables (compare/render.py renders the sections)."""

import math
import re

import pandas as pd

from experiments import names

from . import render, verdicts

VERDICTS_ID = "verdicts"  # the HTML id of the per-config verdict table


def _wide(r):
    """The per-config table (its swept keys and results, no fixed setting) with each comparison's statistics
    and parity check as columns `<column>_vs_<framework>`."""
    fixed = [c for c in r.table if (c in names.CONFIG_PARAMS or "." in c) and c not in r.columns]
    table = r.table.drop(columns=fixed)
    for frame in (r.comparisons, r.parity):
        for other, rows in frame.groupby("vs", sort=False):
            stats_ = rows.drop(columns="vs").set_index(list(verdicts.KEYS)).add_suffix(f"_vs_{other}")
            table = table.merge(stats_, left_on=list(verdicts.KEYS), right_index=True, how="left")
    return table


def _csv_tables(r):
    """{file name: table}; the parity columns only when some run was checked."""
    checked = len(r.parity) > 0
    compared = r.comparisons
    if checked:
        compared = compared.merge(r.parity, on=[*verdicts.KEYS, "vs"], how="left")
    pairs = r.pairs if checked else r.pairs.drop(columns=[c for c in r.pairs if c.startswith("parity_")])
    files = {"per_config.csv": _wide(r), "verdicts.csv": compared, "summary.csv": _summary_csv(r),
             "where.csv": r.where, "runs.csv": pairs, "mcnemar.csv": r.tests}
    files.update({f"by_{re.sub(r'[^A-Za-z0-9_.-]', '_', axis)}.csv": p for axis, p in r.by_axis.items()})
    return files


def _grid_columns(a, kernels):
    """The grid answer of one framework pair as CSV columns (the time ratio's back from the log scale)."""
    d, r = a["delta"], a["ratio"]
    return {"grid_verdict": a["verdict"], "delta_pp": d["mean"], "delta_lo": d["lo"], "delta_hi": d["hi"],
            "tau2": d["tau2"], "i2": d["i2"], "pi_lo": d["pi_lo"], "pi_hi": d["pi_hi"],
            "p_diff": d["p_diff"], "p_tost": d["p_tost"],
            "time_ratio": math.exp(r["mean"]) if r["mean"] == r["mean"] else math.nan,
            "ratio_lo": math.exp(r["lo"]) if r["lo"] == r["lo"] else math.nan,
            "ratio_hi": math.exp(r["hi"]) if r["hi"] == r["hi"] else math.nan, "ratio_tau2": r["tau2"],
            "seeds_80": a["seeds"], "blas": "; ".join(kernels) or "not recorded"}


def _summary_csv(r):
    """Per framework compared: per-config verdict counts, the grid answer, and the parity checks when any."""
    s = r.summary
    parity = {other: {"parity_configs_checked": p["checked"], "parity_configs_flagged": len(p["flagged"]),
                      "parity_dev_max": p["largest"]} for other, p in s["parity"].items()}
    return pd.DataFrame([{"vs": other, **o["verdicts"], "configs": o["configs"],
                          **_grid_columns(r.grid[other], r.kernels.get(other, {})),
                          **{k: v for k, v in o.items() if k not in ("verdicts", "configs")},
                          **parity.get(other, {})} for other, o in s["overview"].items()])


def write(r, out, formats, parts):
    """Write the chosen formats of the report's sections `parts` into `out`; returns the files written
    (figures excluded)."""
    title = f"{names.REFERENCE} vs {', '.join(o for o in r.summary['frameworks'] if o != names.REFERENCE)}: " \
            f"{', '.join(r.experiments)}"
    written = []
    if "md" in formats:
        (out / "report.md").write_text(render.to_markdown(title, parts))
        written.append(out / "report.md")
    if "html" in formats:
        (out / "report.html").write_text(render.to_html(title, parts, {"Verdicts per config": VERDICTS_ID}))
        written.append(out / "report.html")
    if "csv" in formats:
        files = _csv_tables(r)
        for name, frame in files.items():
            frame.to_csv(out / name, index=False)
        for other, pivot in r.two_way.items():
            pivot.to_csv(out / f"time_ratio_width_x_batch_{other}.csv")
            written.append(out / f"time_ratio_width_x_batch_{other}.csv")
        written += [out / name for name in files]
    return written


