"""McNemar's inputs (compare/mcnemar.py) when they cannot be trusted: two frameworks' predictions on
different test sets, and a cached predictions file that was cut or overwritten. Neither may give a
p-value; each gives a note naming the run and why."""

import numpy as np
import pytest

from compare import mcnemar
from compare.runs import load_pairs, search
from experiments import names
from stores import LABELS, N_TEST, add_pair, done, params, predictions_csv, tmp_store


def csv(labels, predicted):
    rows = "\n".join(f"{a},{b},0.9" for a, b in zip(labels, predicted))
    return "label,predicted,probability\n" + rows + "\n"


def store_of(tmp_path, keras_predictions):
    """A store with one pair: scratchnn wrong on the first 200 test images, keras's predictions given."""
    uri, client, experiment = tmp_store(tmp_path, "mcnemar")
    children = {"scratchnn": done(0.98, 1.0, **{names.PREDICTIONS: predictions_csv(200)}),
                "keras": done(0.97, 2.0, **{names.PREDICTIONS: keras_predictions})}
    ids = add_pair(client, experiment, params(), children, config_id="A")
    return uri, ids


def mcnemar_of(uri, cache):
    return mcnemar.tests(load_pairs(search("mcnemar", uri)), cache, uri)


def test_the_same_test_set_gives_the_counts_by_hand(tmp_path):
    uri, _ = store_of(tmp_path, predictions_csv(300))  # keras wrong on the first 300: b = 100, c = 0
    table, notes = mcnemar_of(uri, tmp_path / "cache")
    assert notes == [] and table[["vs", "b", "c", "n_test"]].values.tolist() == [["keras", 100, 0, N_TEST]]
    assert table["p"].iloc[0] == pytest.approx(2 * 0.5**100)


@pytest.mark.parametrize("labels", [np.roll(LABELS, 1), LABELS[:-1]], ids=["reordered", "one image fewer"])
def test_predictions_on_different_test_sets_give_a_note_not_a_p_value(tmp_path, labels):
    uri, ids = store_of(tmp_path, csv(labels, labels))  # keras right on every image of its own set
    table, notes = mcnemar_of(uri, tmp_path / "cache")
    assert table.empty
    assert notes == [f"McNemar scratchnn vs keras, run {ids['parent']}: the two frameworks' predictions are not on "
                     "the same test set"]


@pytest.mark.parametrize("corrupt", [lambda text: text[: len(text) // 2], lambda text: "\x00\xff garbage\n"],
                         ids=["cut", "overwritten"])
def test_a_corrupt_cached_predictions_file_is_fetched_again(tmp_path, corrupt):
    """A cut cache entry once read as a shorter test set ("not on the same test set"), an overwritten
    one as no predictions; the store's copy is the truth, so the cached one is replaced by it."""
    uri, ids = store_of(tmp_path, predictions_csv(300))
    cache = tmp_path / "cache"
    first, _ = mcnemar_of(uri, cache)  # the first report downloads both files into the cache
    cached = cache / ids["keras"] / names.PREDICTIONS
    cached.write_text(corrupt(cached.read_text()))
    table, notes = mcnemar_of(uri, cache)
    assert notes == [] and table.values.tolist() == first.values.tolist()
    assert table[["b", "c", "n_test"]].values.tolist() == [[100, 0, N_TEST]]
    assert cached.read_text() == predictions_csv(300)
