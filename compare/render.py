"""The report as Markdown and as one self-contained HTML page.

A report is a title and a list of sections (title, content): content is a list of str (bullet
lines), a str (a paragraph), a DataFrame of strings (a table, shown without its index) or a Path
(a PNG figure, embedded in the HTML page). Tables with an `id` keep it in the HTML (`verdicts`).
"""

import base64
import html
import re
from pathlib import Path

import pandas as pd

from experiments import names

from . import stats
from .display import PARITY_FLAG
from .verdicts import COLOURS

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1400px;color:#1f2328;
     padding:0 1em;line-height:1.45}
h1{font-size:1.6em;border-bottom:1px solid #d0d7de;padding-bottom:.3em} h2{font-size:1.25em;margin-top:1.8em}
ul.summary{font-size:1.02em;background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:.8em 2em}
table{border-collapse:collapse;font-size:13px;margin:.5em 0;display:block;overflow-x:auto}
th{background:#f6f8fa;text-align:left;position:sticky;top:0;vertical-align:bottom}
th,td{border:1px solid #d0d7de;padding:3px 8px} td{white-space:nowrap}
tr:nth-child(even) td{background:#fbfcfd} td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{color:#fff;border-radius:4px;padding:1px 6px;white-space:nowrap}
td.badge{border-radius:0} img{max-width:100%;border:1px solid #d0d7de}
code{background:#f6f8fa;padding:1px 4px;border-radius:4px}
td.flag{background:#ffebe9 !important;color:#cf222e;font-weight:600}
"""
NUMBER = re.compile(r"^[-+]?(\d[\d.]*(e[-+]?\d+)?)( ± [\d.]+)?$|^n/a$")
VERDICT = re.compile("|".join(re.escape(v) for v in sorted(COLOURS, key=len, reverse=True)))


def method(margin_pp, parity_bound=None, multiplicity="bh"):
    """The method and its assumptions, in short (docs/statistics.md has the long version); the parity
    check too when `parity_bound` is given (some run was checked)."""
    return [
        f"Unit: a seed. For every config, each seed is one paired run: {names.REFERENCE} and the other framework "
        "trained from that seed and tested on the same test set; Δacc is their accuracy difference in percentage "
        f"points ({names.REFERENCE} − other) and the time ratio their fit times' ratio ({names.REFERENCE} / other).",
        "Grid answer: a random-effects meta-analysis over configs (DerSimonian–Laird τ², Hartung–Knapp interval on "
        "k − 1 degrees of freedom) of each config's mean Δacc, weighted by its squared standard error; I² is the "
        "share of the configs' spread that is between configs. Equivalent when its 90% interval lies within "
        f"±{margin_pp:g} pp, different when its 95% interval excludes 0. The time ratio likewise, on log ratios. "
        "\"Where they differ\" is the same per value of each swept key.",
        "Spread: when Bartlett's test finds the configs' seed-to-seed variances compatible (p ≥ 0.05), one pooled "
        "variance serves every config, with the degrees of freedom of all of them; else each config its own.",
        f"Δacc: mean over seeds with a {stats.LEVEL:.0%} t-interval. Time ratio: geometric mean with the t-interval "
        "computed on the log ratios, then exponentiated.",
        "Tests: a paired t-test of Δacc against 0 (\"p diff\") and TOST, two one-sided t-tests against "
        f"±{margin_pp:g} pp (\"p equiv\"), each adjusted over the report's comparisons with ≥ 2 seeds by "
        f"{stats.MULTIPLICITY[multiplicity]}, the two kinds as separate families.",
        f"Verdict at α = {stats.ALPHA:g}: equivalent when p equiv < α (the difference lies within ±{margin_pp:g} pp, "
        "even if it is not exactly 0); else different when p diff < α; else inconclusive, with the seeds that would "
        "give 80% power at the observed spread (noncentral t); one seed gives inconclusive (n=1).",
        f"McNemar (per run): the exact binomial test on the test images that exactly one of the two frameworks "
        f"classifies right (b: only {names.REFERENCE}, c: only the other). It asks whether the two trained networks "
        "differ on this test set, for that one seed; it ignores the seed-to-seed variation, so it does not enter "
        "the verdict. Beside inconclusive (n=1) it is that one run's test only.",
        "Assumptions: seeds are independent draws; the mean Δacc over seeds is close to normal (t-interval), and "
        "log time ratios likewise; configs are a sample of the settings the grid spans; timings come from one "
        "machine under comparable load and one BLAS kernel (named beside every time ratio).",
    ] + ([] if parity_bound is None else [
        f"Parity (runs with parity=true or auto): before training, every framework starts from {names.REFERENCE}'s "
        "initial weights and takes the same steps on the same batches; \"parity dev\" is the largest relative "
        f"per-step loss deviation |loss_{names.REFERENCE} − loss_other| / |loss_other|, the largest over the seeds "
        f"checked. {PARITY_FLAG} marks a config at or beyond {parity_bound:g}, with the first step over the bound. "
        "parity=auto leaves out configs with dropout (their masks cannot match): \"not checked\"."])


def _cell(text):
    """An escaped table cell, verdict cells coloured, numbers right-aligned."""
    text = str(text)
    if text.startswith(PARITY_FLAG):
        return f"<td class='flag'>{html.escape(text)}</td>"
    if text in COLOURS:
        return f"<td class='badge' style='background:{COLOURS[text]}'>{html.escape(text)}</td>"
    return f"<td class='num'>{html.escape(text)}</td>" if NUMBER.match(text) else f"<td>{html.escape(text)}</td>"


def html_table(df, table_id=None):
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in df.itertuples(index=False))
    ident = f" id='{html.escape(table_id)}'" if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _inline(text):
    """Escaped text with `code` spans, links for URLs, and every verdict name as a coloured badge."""
    text = VERDICT.sub(lambda m: f"<span class='badge' style='background:{COLOURS[m.group(0)]}'>{m.group(0)}</span>",
                       html.escape(text))
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"(https?://[^\s<,]+)", r"<a href='\1'>\1</a>", text)


def _html_part(title, part, table_id):
    if isinstance(part, Path):
        data = base64.b64encode(part.read_bytes()).decode()
        return f"<img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>"
    if isinstance(part, pd.DataFrame):
        return html_table(part, table_id)
    if isinstance(part, str):
        return f"<p>{_inline(part)}</p>"
    css = " class='summary'" if title == "Summary" else ""
    return f"<ul{css}>" + "".join(f"<li>{_inline(line)}</li>" for line in part) + "</ul>"


def to_html(title, sections, ids=None):
    """The page: the title, then each section's heading and content. `ids`: {section title: table id}."""
    ids = ids or {}
    body = [f"<h1>{html.escape(title)}</h1>"]
    for heading, part in sections:
        body.append(f"<section><h2>{html.escape(heading)}</h2>{_html_part(heading, part, ids.get(heading))}</section>")
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>" + "\n".join(body)
            + "</body></html>")


def md_cell(value):
    """A Markdown table cell: `|` escaped, line breaks as spaces."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def markdown_table(df):
    """A GitHub table that also reads well in a terminal (no index column)."""
    cells = [[md_cell(c) for c in df.columns]] + [[md_cell(v) for v in row] for row in df.itertuples(index=False)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = ["| " + " | ".join(v.ljust(w) for v, w in zip(row, widths)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _md_part(title, part):
    if isinstance(part, Path):
        return f"![{title}]({part.name})"
    if isinstance(part, pd.DataFrame):
        return markdown_table(part)
    return part if isinstance(part, str) else "\n".join(f"- {line}" for line in part)


def to_markdown(title, sections):
    return f"# {title}\n\n" + "\n\n".join(f"## {t}\n\n{_md_part(t, p)}" for t, p in sections) + "\n"
