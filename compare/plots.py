"""The report's figures, as PNG files (matplotlib, Agg backend). Each draws only what varies."""

import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from experiments import names  # noqa: E402

from .runs import samples  # noqa: E402
from .verdicts import COLOURS  # noqa: E402

MARKERS = dict(zip(names.FRAMEWORKS, "osD^v"))
LOG_AXES = frozenset({"lr", "width", "batch_size", "l2"})  # swept in powers, read on a log axis


def colour(framework):
    return f"C{names.FRAMEWORKS.index(framework)}"


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def forest(table, labels, margin_pp, path):
    """Δacc (pp) with its 95% t-interval per config and framework compared, coloured by verdict, with
    the equivalence margin shaded; a one-seed config is a point without an interval."""
    labels = [textwrap.fill(text, 48) for text in labels]
    fig, ax = plt.subplots(figsize=(9, 1.4 + 0.3 * sum(text.count("\n") + 1 for text in labels)))
    y = np.arange(len(table))[::-1]
    for yi, row in zip(y, table.to_dict("records")):
        c = COLOURS.get(row["verdict"], "black")
        if row["delta_lo"] == row["delta_lo"]:
            ax.plot([row["delta_lo"], row["delta_hi"]], [yi, yi], color=c, lw=2)
        ax.plot(row["delta_pp"], yi, MARKERS.get(row["vs"], "o"), color=c, ms=7)
    ax.axvspan(-margin_pp, margin_pp, color="0.85", zorder=0, label=f"margin ±{margin_pp:g} pp")
    ax.axvline(0, color="0.3", lw=1)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_ylim(-0.8, len(table) - 0.2)
    ax.set_xlabel(f"Δacc ({names.REFERENCE} − other), percentage points, mean and 95% CI over seeds")
    handles = [Line2D([], [], color=c, marker="o", lw=2, label=v) for v, c in COLOURS.items()
               if v in set(table["verdict"])]
    handles += [Line2D([], [], color="black", marker=MARKERS.get(o, "o"), ls="", label=f"vs {o}")
                for o in dict.fromkeys(table["vs"])]
    ax.legend(handles=handles + [plt.Rectangle((0, 0), 1, 1, color="0.85", label=f"±{margin_pp:g} pp")],
              fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.grid(axis="x", alpha=0.3)
    _save(fig, path)


def ratio_heatmaps(two_way, path):
    """Geometric-mean time ratio (REFERENCE / other) over width × batch size, one panel per other framework."""
    fig, axes = plt.subplots(1, len(two_way), figsize=(6 * len(two_way), 4.5), squeeze=False)
    for ax, (other, pivot) in zip(axes[0], two_way.items()):
        values = pivot.to_numpy(dtype=float)
        top = max(2.0, np.nanmax(values)) if np.isfinite(values).any() else 2.0
        image = ax.imshow(values, cmap="RdYlGn_r", vmin=0, vmax=top)
        ax.set_xticks(range(len(pivot.columns)), [str(c) for c in pivot.columns])
        ax.set_yticks(range(len(pivot.index)), [str(i) for i in pivot.index])
        ax.set_xlabel("batch size")
        ax.set_ylabel("width")
        for (r, c), v in np.ndenumerate(values):
            ax.text(c, r, "n/a" if np.isnan(v) else f"{v:.3g}", ha="center", va="center")
        fig.colorbar(image, ax=ax, label=f"time ratio ({names.REFERENCE} / {other})")
    _save(fig, path)


def accuracy_by_axis(pairs, axes, path):
    """Mean test accuracy per framework against each numeric config key that varies (averaged over
    the others), one panel per key."""
    fig, grid = plt.subplots(1, len(axes), figsize=(4.5 * len(axes), 4), squeeze=False)
    for ax, axis in zip(grid[0], axes):
        for fw in (f for f in names.FRAMEWORKS if f"{f}_acc" in pairs):
            means = pairs[samples(pairs, [fw])].groupby(axis)[f"{fw}_acc"].mean().dropna()
            if len(means):
                ax.plot(means.index.astype(float), 100 * means.values, marker=MARKERS[fw], color=colour(fw), label=fw)
        values = np.sort(pairs[axis].dropna().astype(float).unique())
        if axis in LOG_AXES and (values > 0).all():
            ax.set_xscale("log")
        if len(values) <= 8:  # a grid's values as the ticks; a search's many values keep the default ticks
            ax.set_xticks(values, [f"{v:g}" for v in values])
            ax.minorticks_off()
        ax.set_xlabel(axis)
        ax.set_ylabel("test accuracy %")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    _save(fig, path)


def confusion_matrices(matrices, path):
    """The confusion matrices of the chosen run, side by side."""
    fig, axes = plt.subplots(1, len(matrices), figsize=(5 * len(matrices), 4.5), squeeze=False)
    for ax, (fw, C) in zip(axes[0], matrices.items()):
        ax.imshow(C, cmap="Blues")
        for (r, c), v in np.ndenumerate(C):
            ax.text(c, r, int(v), ha="center", va="center", fontsize=6)
        ax.set_title(fw)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
    _save(fig, path)


def _final_bars(ax, histories, key):
    """One epoch: a bar per framework and split (train, validation) with its value written on it."""
    bars = [(f"{fw}\n{split}", values[-1], colour(fw), hatch) for fw, history in histories.items()
            for split, series, hatch in (("train", key, ""), ("val", f"val_{key}", "//"))
            if (values := np.asarray(history.get(series) or [], dtype=float)).size and values[-1] == values[-1]]
    for x, (text, value, c, hatch) in enumerate(bars):
        ax.bar(x, value, color=c, hatch=hatch, alpha=0.8, edgecolor="black")
        ax.annotate(f"{value:.4g}", (x, value), ha="center", va="bottom", fontsize=9)
    ax.set_xticks(range(len(bars)), [b[0] for b in bars], fontsize=8)
    ax.set_xlabel("after epoch 1")


def learning_curves(histories, path, title=""):
    """Loss and accuracy per epoch of one run: a colour per framework, train solid and validation
    dashed, every epoch a marker; a 1-epoch run is a bar per framework and split with its value (a
    lone point says little); an absent or all-NaN series is not drawn."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    epochs = max(len(h.get("loss") or []) for h in histories.values())
    for ax, key in zip(axes, ("loss", "accuracy")):
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        if epochs == 1:
            _final_bars(ax, histories, key)
            continue
        ax.set_xlim(0.5, epochs + 0.5)
        for fw, history in histories.items():
            for split, series, style in (("train", key, "-"), ("val", f"val_{key}", "--")):
                values = np.asarray(history.get(series) or [], dtype=float)
                if (values == values).any():
                    ax.plot(np.arange(1, len(values) + 1), values, style, marker=MARKERS[fw], color=colour(fw),
                            label=f"{fw} {split}")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        if ax.lines:
            ax.legend()
    fig.suptitle(title)
    _save(fig, path)
