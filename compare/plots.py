"""The report's figures, as PNG files (matplotlib, Agg backend)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .runs import FRAMEWORKS, samples  # noqa: E402

STYLE = {"scratchnn": "-", "keras": "--"}


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def accuracy_vs_lr(pairs, path):
    """Mean test accuracy against learning rate, one colour per activation, one line style per framework."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (activation, group) in enumerate(pairs.groupby("activation")):
        for fw in FRAMEWORKS:
            ok = group[samples(group, [fw])]
            means = ok.groupby("lr")[f"{fw}_acc"].mean()
            if len(means):
                ax.plot(means.index, 100 * means.values, STYLE[fw], marker="o", color=f"C{i}", label=f"{activation} {fw}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("test accuracy %")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def ratio_heatmap(two_way, path):
    """Geometric-mean time ratio (scratchnn / Keras) over width × batch size, annotated."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    values = two_way.to_numpy(dtype=float)
    image = ax.imshow(values, cmap="RdYlGn_r", vmin=0, vmax=max(2.0, np.nanmax(values) if values.size else 2.0))
    ax.set_xticks(range(len(two_way.columns)), [str(c) for c in two_way.columns])
    ax.set_yticks(range(len(two_way.index)), [str(i) for i in two_way.index])
    ax.set_xlabel("batch size")
    ax.set_ylabel("width")
    for (r, c), v in np.ndenumerate(values):
        ax.text(c, r, "n/a" if np.isnan(v) else f"{v:.2f}", ha="center", va="center")
    fig.colorbar(image, ax=ax, label="time ratio (scratchnn / keras)")
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


def learning_curves(histories, path, title=""):
    """Loss and accuracy per epoch of one paired run: a colour per framework, train solid and
    validation dashed; a series absent or all NaN (no validation set) is not drawn."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key in zip(axes, ("loss", "accuracy")):
        for fw, history in histories.items():
            for split, series, style in (("train", key, "-"), ("val", f"val_{key}", "--")):
                values = np.asarray(history.get(series) or [], dtype=float)
                if (values == values).any():
                    ax.plot(np.arange(1, len(values) + 1), values, style, color=f"C{FRAMEWORKS.index(fw)}",
                            label=f"{fw} {split}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    fig.suptitle(title)
    _save(fig, path)
