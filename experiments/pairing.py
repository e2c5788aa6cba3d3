"""McNemar's discordant counts per framework pair, computed while every framework's test predictions
are in memory and logged on the parent, so a report needs no prediction downloads."""

from compare.stats import discordant  # the report's own definition of b and c (NumPy and SciPy only)

from . import names


def metrics(labels, predicted):
    """The parent's `vs_<other>/mcnemar_b`, `_c` and `_n` for REFERENCE against every other framework in
    `predicted` ({framework: predicted classes on the test set}); empty without REFERENCE."""
    if names.REFERENCE not in predicted:
        return {}
    out = {}
    for other in (fw for fw in predicted if fw != names.REFERENCE):
        b, c = discordant(labels, predicted[names.REFERENCE], predicted[other])
        out.update({names.versus(other, names.MCNEMAR_B): b, names.versus(other, names.MCNEMAR_C): c,
                    names.versus(other, names.MCNEMAR_N): len(labels)})
    return out
