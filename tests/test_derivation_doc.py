"""docs/derivation.md as a document: its errata table quotes the seed, every `#anchor` link resolves,
the references cite equations, and every code mention (a link to a file, or a dotted name of
scratchnn's) resolves. Each checker returns the problems it finds; the tests run them on the doc
and on a doc broken on purpose, so that each can be seen to fail."""

import ast
import importlib
import re
from pathlib import Path

import numpy as np
import pytest

import scratchnn as sn

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "derivation.md"
SEED = ROOT.parent / "shared" / "seed" / "neural-networks-from-scratch.md"  # outside the repository
EQUATION_TESTS = ROOT / "tests" / "test_derivation.py"

# the seed lines issue 28 lists, and those of the five errors corrected before it
SEED_ERRORS = {51, 69, 166, 180, 181, 306, 322, 368, 383, 539, 545, 593, 846, 856, 1088, 1090, 1104, 1106,
               1133, 1145}
REFERENCES = {"nielsen", "glorot2010", "he2015", "lecun1998", "kingma2015", "srivastava2014", "sutskever2013",
              "hinton-rmsprop"}

ROW = re.compile(r"^\| (\d+) \| (`+)(.+?)\2 \| (.+) \|$")
ANCHOR = re.compile(r'<a id="([^"]+)"></a>')
ANCHOR_LINK = re.compile(r"\]\(#([^)]+)\)")
CODE_LINK = re.compile(r"\[`([^`]+)`\]\((\.\./[^)#\s]+)\)")
FILE_LINK = re.compile(r"\]\((\.\./[^)#\s]+)(#[^)\s]*)?\)")
CODE_SPAN = re.compile(r"(?<!`)`([A-Za-z_]\w*(?:\.\w+)+)`(?!`)")


@pytest.fixture(scope="module")
def doc():
    return DOC.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def seed_lines():
    if not SEED.is_file():
        pytest.skip(f"the seed document is not at {SEED}")
    return SEED.read_text(encoding="utf-8").splitlines()


def section(text, title):
    """The body of the '## title' section."""
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


# ---- errata ------------------------------------------------------------------------------------
def errata_rows(text):
    """(seed line, quote, fix) for every row of the table under '## Errata'; `\\|` in a quote is '|'."""
    rows = []
    for line in section(text, "Errata").splitlines():
        if not line.startswith("| ") or line.startswith(("| seed line", "| ---")):
            continue
        match = ROW.match(line)
        assert match, f"an errata row not of the form | line | `quote` | fix |: {line}"
        rows.append((int(match.group(1)), match.group(3).replace("\\|", "|"), match.group(4)))
    return rows


def misquoted(rows, seed_lines):
    """The (line, quote) of the rows whose seed line does not exist or does not contain the quote."""
    return [(n, quote) for n, quote, _ in rows if not (1 <= n <= len(seed_lines) and quote in seed_lines[n - 1])]


def test_every_errata_row_quotes_its_seed_line(doc, seed_lines):
    rows = errata_rows(doc)
    assert len(rows) >= len(SEED_ERRORS)
    assert misquoted(rows, seed_lines) == []
    assert all(len(quote) >= 5 and len(fix) > 20 for _, quote, fix in rows)


def test_the_errata_cover_every_listed_seed_error(doc):
    assert SEED_ERRORS - {n for n, _, _ in errata_rows(doc)} == set()


def test_a_changed_quote_or_line_is_caught(doc, seed_lines):
    rows = errata_rows(doc)
    (n, quote, fix), rest = rows[0], rows[1:]
    assert misquoted([(n, quote + "x", fix)] + rest, seed_lines) == [(n, quote + "x")]
    assert misquoted([(n + 1, quote, fix)], seed_lines) == [(n + 1, quote)]
    assert misquoted([(len(seed_lines) + 1, quote, fix)], seed_lines) != []
    broken = doc.replace("`symmetry breaking problem* (CITATION)`", "`symmetry-breaking problem* (CITATION)`")
    assert misquoted(errata_rows(broken), seed_lines) == [(51, "symmetry-breaking problem* (CITATION)")]


# ---- anchors and references --------------------------------------------------------------------
def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(text):
    """Every anchor of the page: the headings' and the explicit <a id="..."></a> ones."""
    return {slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, re.M)} | set(ANCHOR.findall(text))


def broken_anchor_links(text):
    return sorted(set(ANCHOR_LINK.findall(text)) - anchors(text))


def reference_problems(text):
    """Missing references, references the text never cites, and references that cite no equation."""
    body, refs = text.split("\n## References\n", 1)
    entries = dict(re.findall(r'<a id="ref-([^"]+)"></a>(.+?)(?=\n- <a id="ref-|\Z)', refs, re.S))
    problems = [f"missing: {name}" for name in sorted(REFERENCES - set(entries))]
    problems += [f"never cited: {name}" for name in sorted(entries) if f"](#ref-{name})" not in body]
    problems += [f"cites no equation: {name}" for name, entry in sorted(entries.items()) if "](#eq-" not in entry]
    return problems


def test_every_anchor_link_resolves(doc):
    ids = ANCHOR.findall(doc)
    assert len(ids) == len(set(ids)), "an anchor is defined twice"
    assert len(ANCHOR_LINK.findall(doc)) > 40
    assert broken_anchor_links(doc) == []
    assert broken_anchor_links(doc.replace("](#eq-bp2)", "](#eq-bp2.2)", 1)) == ["eq-bp2.2"]
    assert "CITATION" not in doc.replace(section(doc, "Errata"), "")


def test_the_references_are_cited_and_cite_the_equations_they_back(doc):
    assert reference_problems(doc) == []
    body, refs = doc.split("\n## References\n", 1)
    uncited = body.replace("](#ref-he2015)", "](#eq-i1)") + "\n## References\n" + refs
    assert reference_problems(uncited) == ["never cited: he2015"]
    assert reference_problems(doc.replace('<a id="ref-nielsen">', '<a id="ref-nielson">')) == [
        "missing: nielsen", "never cited: nielson"]


# ---- code mentions -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def instances():
    """Built objects for names whose attributes exist only on instances (Dense.W, Network.layers)."""
    net = sn.Network(4, [sn.Dense(5, "tanh"), sn.Dropout(0.5), sn.Dense(3, "softmax")], seed=0, dtype="float64")
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(8, 4)), rng.integers(0, 3, 8)
    net.train_on_batch(X, y)
    net.backward(net.forward(X.T), sn.losses.from_labels(y, 3, np.float64))
    return {"Network": net, "Dense": net.layers[0], "Dropout": net.layers[1], "Optimizer": net.optimizer,
            "Loss": sn.losses.Loss, "Activation": sn.activations.Activation}


def resolve(name, instances):
    """The object a dotted name of scratchnn's names, None if the name is not one of scratchnn's
    (`keras.x`); raises AttributeError or ImportError if it is and does not exist."""
    first, *rest = name.split(".")
    if first == "scratchnn":
        obj = sn
    elif first in instances:
        obj = instances[first]
    elif first in ("activations", "initializers", "losses", "optimizers", "layers", "network", "training"):
        obj = importlib.import_module(f"scratchnn.{first}")
    else:
        return None
    for part in rest:
        if hasattr(obj, part) or not hasattr(obj, "__path__"):
            obj = getattr(obj, part)
        else:
            obj = importlib.import_module(f"{obj.__name__}.{part}")
    return obj


def unresolved_mentions(text, instances):
    """The code spans naming a scratchnn symbol that does not exist."""
    bad = []
    for name in sorted(set(CODE_SPAN.findall(text))):
        try:
            resolve(name, instances)
        except (AttributeError, ImportError):
            bad.append(name)
    return bad


def bad_code_links(text):
    """Links to files that do not exist, and [`symbol`](../file) links whose symbol is not in that file."""
    bad = [rel for rel, _ in FILE_LINK.findall(text) if not (DOC.parent / rel).resolve().is_file()]
    for name, rel in CODE_LINK.findall(text):
        path = (DOC.parent / rel).resolve()
        if not path.is_file():
            continue
        if name.startswith("scratchnn."):
            try:
                obj = resolve(name, {})
                home = Path(importlib.import_module(obj.__module__).__file__).resolve()
            except (AttributeError, ImportError):
                bad.append(name)
                continue
            if home != path:
                bad.append(f"{name} is not in {rel}")
        elif name.startswith("test_"):
            defined = {n.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.FunctionDef)}
            if name not in defined:
                bad.append(f"{name} is not defined in {rel}")
    return bad


def test_every_code_link_resolves(doc):
    """Every [`name`](../path) names an existing file and, in it, an existing function, class or test."""
    assert len(CODE_LINK.findall(doc)) > 30
    assert bad_code_links(doc) == []
    broken = doc.replace("[`scratchnn.layers.Dense.backward_delta`](../scratchnn/layers.py)",
                         "[`scratchnn.layers.Dense.backward_deltas`](../scratchnn/layers.py)", 1)
    broken = broken.replace("[`test_costs`](../tests/test_derivation.py)", "[`test_costs`](../tests/test_costs.py)")
    assert bad_code_links(broken) == ["../tests/test_costs.py", "scratchnn.layers.Dense.backward_deltas"]
    moved = doc.replace("[`scratchnn.losses.MeanSquaredError`](../scratchnn/losses.py)",
                        "[`scratchnn.losses.MeanSquaredError`](../scratchnn/layers.py)")
    assert bad_code_links(moved) == ["scratchnn.losses.MeanSquaredError is not in ../scratchnn/layers.py"]


def test_every_code_mention_resolves(doc, instances):
    """Every `Dense.W`-like mention in the text names an attribute the code has."""
    mentions = [name for name in set(CODE_SPAN.findall(doc)) if resolve(name, instances) is not None]
    assert len(mentions) >= 20
    assert unresolved_mentions(doc, instances) == []
    assert unresolved_mentions(doc + "\n`Dense.deltas` and `Network._prepared`", instances) == [
        "Dense.deltas", "Network._prepared"]


def test_every_equation_test_is_linked_from_the_doc(doc):
    linked = {name for name, rel in CODE_LINK.findall(doc) if rel.endswith("test_derivation.py")}
    defined = {n.name for n in ast.parse(EQUATION_TESTS.read_text()).body
               if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}
    assert defined and defined <= linked, f"not linked from the doc: {sorted(defined - linked)}"
