"""Files logged with each run: learning curves, test predictions and the confusion matrix."""

import numpy as np


def confusion_matrix(y_true, y_pred, n_classes):
    """C[i, j] = number of examples of class i predicted as j."""
    C = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(C, (y_true, y_pred), 1)
    return C


def save_predictions(folder, y_true, probabilities):
    """predictions.csv (label, predicted, probability of the prediction) and confusion_matrix.csv."""
    pred = probabilities.argmax(axis=1)
    rows = np.column_stack([y_true, pred, probabilities.max(axis=1)])
    np.savetxt(folder / "predictions.csv", rows, fmt=["%d", "%d", "%.6f"], delimiter=",",
               header="label,predicted,probability", comments="")
    C = confusion_matrix(y_true, pred, probabilities.shape[1])
    np.savetxt(folder / "confusion_matrix.csv", C, fmt="%d", delimiter=",")
    return C


def learning_curves(path, histories, title=""):
    """One PNG: loss and accuracy per epoch, train (solid) and validation (dashed), per framework."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for (name, history), color in zip(histories.items(), ("tab:blue", "tab:orange", "tab:green", "tab:red")):
        for ax, key in zip(axes, ("loss", "accuracy")):
            for series, style, label in ((key, "-", "train"), (f"val_{key}", "--", "val")):
                values = history.get(series) or []
                if any(v == v for v in values):  # absent, or all NaN (no validation set): not drawn
                    ax.plot(np.arange(1, len(values) + 1), values, color=color, linestyle=style, marker="o",
                            label=f"{name} {label}")
    for ax, key in zip(axes, ("loss", "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
