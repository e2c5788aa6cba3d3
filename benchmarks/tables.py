"""The benchmark's tables: measurements in, rows with ratios out, Markdown and CSV.

Every time in a row is rounded once, to 4 significant digits, and every ratio is the division of
the two rounded times as printed, so a reader can check any ratio from the table itself.
"""

import math
import statistics

REFERENCE = "scratchnn"
FLOOR = "gemm"
MEMORY_BOUND = 1.5  # issue 15, target 6: training peak <= 1.5 x (data + parameters + one batch of activations)


def sig(x, digits=4):
    """x rounded to `digits` significant digits (a time as the table prints it)."""
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, digits - 1 - math.floor(math.log10(abs(x))))


def ratio(a, b):
    return a / b if a == a and b == b and b > 0 else float("nan")


def config_key(r):
    return (r["threads"], r["depth"], r["width"], r["batch_size"])


def params_mb(depth, width, *, n_in=784, n_out=10):
    n = [n_in] + [width] * depth + [n_out]
    return sum(a * b + a for a, b in zip(n[1:], n[:-1])) * 4 / 2**20


def activations_mb(depth, width, M, *, n_in=784, n_out=10):
    return sum([n_in] + [width] * depth + [n_out]) * M * 4 / 2**20


def by_config(results):
    """(head, {column: result}) per (threads, depth, width, batch size), in the order first seen;
    `head` is a row's first keys: the config and the steps timed per epoch."""
    grouped = {}
    for r in results:
        grouped.setdefault(config_key(r), {})[r["framework"]] = r
    for (threads, depth, width, M), found in grouped.items():
        any_result = next(iter(found.values()))
        yield {"threads": threads, "depth": depth, "width": width, "batch_size": M,
               "steps_timed": any_result.get("steps_timed"),
               "steps_per_epoch": any_result.get("steps_per_epoch")}, found


def _put_times(row, name, r, *, peak=False):
    """Result r's times, rounded, into `row` under column `name` (nan where it has none), and its
    peak memory if `peak`; returns whether r has times."""
    ok = "s_epoch" in r
    row[f"{name}_s"] = sig(r["s_epoch"]) if ok else float("nan")
    row[f"{name}_min"] = sig(r["min"]) if ok else float("nan")
    row[f"{name}_max"] = sig(r["max"]) if ok else float("nan")
    if peak:
        row[f"{name}_peak_mb"] = round(r["peak_mb"], 1) if ok else float("nan")
    row[f"{name}_first_s"] = sig(r["first_s"]) if ok and "first_s" in r else float("nan")
    row[f"{name}_cpu_per_wall"] = round(r["cpu_per_wall"], 3) if ok and "cpu_per_wall" in r else float("nan")
    return ok


def rows(results, frameworks, peers):
    """One row per (threads, depth, width, batch size) from job results (dicts with framework,
    threads, depth, width, batch_size, s_epoch, min, max, peak_mb, cpu_per_wall, steps_timed,
    steps_per_epoch, data_mb; or an `error`). `frameworks`: the columns in order; `peers`: the frameworks scratchnn is
    compared with (the GEMM floor is not a peer)."""
    out = []
    for row, found in by_config(results):
        for fw in frameworks:
            r = found.get(fw, {})
            ok = _put_times(row, fw, r, peak=True)
            if not ok and r.get("error"):
                row[f"{fw}_error"] = r["error"]
            for key in ("s_epoch", "min", "max"):
                assert not ok or r[key] >= 0, f"negative time {fw} {key}={r[key]}"
        ref = row.get(f"{REFERENCE}_s", float("nan"))
        present = [p for p in peers if row.get(f"{p}_s", float("nan")) == row.get(f"{p}_s")]
        best = min(present, key=lambda p: row[f"{p}_s"]) if present else ""
        row["best_peer"] = best
        row["vs_best_peer"] = ratio(ref, row[f"{best}_s"]) if best else float("nan")
        for p in peers:
            row[f"vs_{p}"] = ratio(ref, row.get(f"{p}_s", float("nan")))
        if FLOOR in frameworks:
            row[f"vs_{FLOOR}"] = ratio(ref, row.get(f"{FLOOR}_s", float("nan")))
        s = found.get(REFERENCE, {})
        if "peak_mb" in s:
            data_mb, p_mb = s["data_mb"], params_mb(row["depth"], row["width"])
            bound = data_mb + p_mb + activations_mb(row["depth"], row["width"], row["batch_size"])
            row["memory_bound_mb"] = round(bound, 1)
            row["memory_ratio"] = (data_mb + p_mb + s["peak_mb"]) / bound
        out.append(row)
    return out


def _time_cell(row, fw):
    t = row[f"{fw}_s"]
    if t != t:
        return "error" if row.get(f"{fw}_error") else "-"
    return f"{t:.4g} ({row[f'{fw}_min']:.3g}–{row[f'{fw}_max']:.3g})"


def _ratio_cell(x):
    return f"{x:.3f}" if x == x else "-"


CONFIG_HEAD = ["threads", "depth", "width", "batch", "steps timed / epoch"]


def _config_cells(row):
    return [str(row["threads"]), str(row["depth"]), str(row["width"]), str(row["batch_size"]),
            f"{row['steps_timed']} / {row['steps_per_epoch']}"]


def _markdown_lines(head, body):
    """A Markdown table: the header, the rule, one line per list of cells."""
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
                     + ["| " + " | ".join(cells) + " |" for cells in body])


def markdown(table, frameworks, peers):
    """The table as Markdown: s/epoch median (min–max) per framework, then the ratios."""
    head = CONFIG_HEAD + [f"{fw} s/epoch" for fw in frameworks]
    head += ["best peer", f"{REFERENCE} / best peer"] + [f"{REFERENCE} / {p}" for p in peers]
    if FLOOR in frameworks:
        head.append(f"{REFERENCE} / {FLOOR}")
    head += [f"{fw} peak MB" for fw in frameworks] + ["memory_ratio"]
    body = []
    for row in table:
        cells = _config_cells(row) + [_time_cell(row, fw) for fw in frameworks]
        cells += [row["best_peer"] or "-", _ratio_cell(row["vs_best_peer"])]
        cells += [_ratio_cell(row[f"vs_{p}"]) for p in peers]
        if FLOOR in frameworks:
            cells.append(_ratio_cell(row[f"vs_{FLOOR}"]))
        cells += [f"{row[f'{fw}_peak_mb']:.0f}" if row[f"{fw}_peak_mb"] == row[f"{fw}_peak_mb"] else "-"
                  for fw in frameworks]
        cells.append(_ratio_cell(row.get("memory_ratio", float("nan"))))
        body.append(cells)
    return _markdown_lines(head, body)


def parse_markdown(text):
    """The table rows of a Markdown table as lists of cells (header first), for tests and readers."""
    lines = [line for line in text.splitlines() if line.startswith("|") and not line.startswith("|---")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def memory_check(table):
    """(passed, worst row) of scratchnn's memory_ratio against MEMORY_BOUND."""
    measured = [r for r in table if r.get("memory_ratio", float("nan")) == r.get("memory_ratio")]
    if not measured:
        return None, None
    worst = max(measured, key=lambda r: r["memory_ratio"])
    return worst["memory_ratio"] <= MEMORY_BOUND, worst


def summary_lines(table, peers, frameworks=()):
    """Counts a reader wants: where scratchnn is ahead of every peer, its distance to the floor,
    and the cores each framework in `frameworks` used (CPU time / wall time over its timed epochs)."""
    lines = []
    for threads in sorted({r["threads"] for r in table}):
        cores = {fw: _range([r[f"{fw}_cpu_per_wall"] for r in table if r["threads"] == threads]) for fw in frameworks}
        if cores:
            unread = " (-: no result, or timed epochs too short to read)" if "-" in cores.values() else ""
            lines.append(f"{threads} thread(s): CPU time / wall time of the timed epochs, median (min–max) over the "
                         f"configs: {'; '.join(f'{fw} {c}' for fw, c in cores.items())}{unread}")
        sub = [r for r in table if r["threads"] == threads and r["vs_best_peer"] == r["vs_best_peer"]]
        if not sub:
            continue
        ahead = sum(r["vs_best_peer"] < 1 for r in sub)
        geo = math.exp(sum(math.log(r["vs_best_peer"]) for r in sub) / len(sub))
        worst = max(sub, key=lambda r: r["vs_best_peer"])
        lines.append(f"{threads} thread(s): {REFERENCE} faster than every peer in {ahead} of {len(sub)} configs; "
                     f"{REFERENCE} / best peer geometric mean {geo:.3f}, worst {worst['vs_best_peer']:.3f} "
                     f"(depth {worst['depth']}, width {worst['width']}, batch {worst['batch_size']}, "
                     f"vs {worst['best_peer']})")
        floor = [r for r in sub if r.get(f"vs_{FLOOR}", float("nan")) == r.get(f"vs_{FLOOR}")]
        if floor:
            top = max(floor, key=lambda r: r[f"vs_{FLOOR}"])
            lines.append(f"{threads} thread(s): {REFERENCE} / GEMM floor from "
                         f"{min(r[f'vs_{FLOOR}'] for r in floor):.3f} to {top[f'vs_{FLOOR}']:.3f} "
                         f"(depth {top['depth']}, width {top['width']}, batch {top['batch_size']})")
    return lines


def _range(values):
    """The measured values' median (min–max), "[k of n configs]" after it if only k of the n
    values are measured, or "-" if none is."""
    measured = sorted(v for v in values if v == v)
    if not measured:
        return "-"
    partial = f" [{len(measured)} of {len(values)} configs]" if len(measured) < len(values) else ""
    return f"{statistics.median(measured):.2f} ({measured[0]:.2f}–{measured[-1]:.2f}){partial}"


# ---- Keras execution settings -----------------------------------------------------------------
def setting_name(jit_compile, steps_per_execution):
    return f"jit={'on' if jit_compile else 'off'} spe={steps_per_execution}"


def keras_rows(results, settings):
    """One row per (threads, config): s/epoch of every Keras setting, and the fastest."""
    out = []
    for row, found in by_config(results):
        for name in settings:
            _put_times(row, name, found.get(name, {}))
        timed_ = [n for n in settings if row[f"{n}_s"] == row[f"{n}_s"]]
        row["fastest"] = min(timed_, key=lambda n: row[f"{n}_s"]) if timed_ else ""
        for name in settings:
            row[f"{name}_vs_fastest"] = ratio(row[f"{name}_s"], row[f"{row['fastest']}_s"]) if timed_ else float("nan")
        out.append(row)
    return out


def keras_markdown(table, settings):
    head = CONFIG_HEAD + [f"{n} s/epoch" for n in settings] + ["fastest"]
    body = []
    for row in table:
        cells = _config_cells(row)
        for n in settings:
            t = row[f"{n}_s"]
            mark = "**" if n == row["fastest"] else ""
            cells.append(f"{mark}{t:.4g}{mark} ({row[f'{n}_min']:.3g}–{row[f'{n}_max']:.3g})" if t == t else "error")
        cells.append(row["fastest"] or "-")
        body.append(cells)
    return _markdown_lines(head, body)


def _geomean(values):
    return math.exp(sum(math.log(x) for x in values) / len(values))


def keras_summary(table, settings):
    """Per thread count and setting: wins and the geometric mean of time / fastest time over the
    configs, on the medians and (less sensitive to other load on the machine) on the minima; the
    recommendation is the setting with the smallest geometric mean of the medians."""
    lines, best = [], {}
    for threads in sorted({r["threads"] for r in table}):
        sub = [r for r in table if r["threads"] == threads and r["fastest"]]
        scores = []
        for n in settings:
            rel = [r[f"{n}_vs_fastest"] for r in sub if r[f"{n}_vs_fastest"] == r[f"{n}_vs_fastest"]]
            if len(rel) == len(sub) and sub:
                mins = [ratio(r[f"{n}_min"], min(r[f"{m}_min"] for m in settings if r[f"{m}_min"] == r[f"{m}_min"]))
                        for r in sub]
                scores.append((_geomean(rel), n, sum(r["fastest"] == n for r in sub), max(rel), _geomean(mins)))
        scores.sort()
        for geo, n, wins, worst, geo_min in scores:
            lines.append(f"{threads} thread(s): {n:<16} fastest in {wins:>2} of {len(sub)} configs; "
                         f"time / fastest: geometric mean {geo:.3f}, worst {worst:.3f}; "
                         f"on the minima: geometric mean {geo_min:.3f}")
        if scores:
            best[threads] = scores[0][1]
            lines.append(f"{threads} thread(s): recommended {scores[0][1]} (smallest geometric mean of the medians)")
    return lines, best
