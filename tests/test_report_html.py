"""The HTML report in a real browser: headless Chromium (Debian's `chromium`, installed by .ci/run;
tests/browser.py runs it) loads report.html from a file:// URL; its DOM holds the verdict table and
its screenshot is not blank."""

from html.parser import HTMLParser

import matplotlib.image
import numpy as np
import pytest

from browser import chromium, needs_chromium, screenshot
from compare import report, stats
from compare.verdicts import COLOURS
from stores import make_verdict_store

pytestmark = needs_chromium


class Tables(HTMLParser):
    """The text of every cell of the table with id `verdicts`, row by row, and the summary's list items."""

    def __init__(self):
        super().__init__()
        self.rows, self.summary, self._in, self._cell = [], [], None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("id") == "verdicts":
            self._in = "table"
        elif tag == "ul" and attrs.get("class") == "summary":
            self._in = "summary"
        elif tag == "tr" and self._in == "table":
            self.rows.append([])
        elif tag in ("td", "th", "li") and self._in:
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._in == "table" and self._cell is not None:
            self.rows[-1].append(self._cell)
        elif tag == "li" and self._in == "summary":
            self.summary.append(self._cell)
        if tag in ("td", "th", "li"):
            self._cell = None
        elif (tag, self._in) in (("table", "table"), ("ul", "summary")):
            self._in = None


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("html")
    uri = make_verdict_store(root)
    assert report.main(["--experiment", "verdicts", "--tracking-uri", uri, "--out", str(root / "r"), "--no-log"]) == 0
    return root / "r" / "report.html"


def test_dom_holds_the_verdict_table_and_an_html_summary(page, tmp_path):
    parsed = Tables()
    parsed.feed(chromium(page.as_uri(), tmp_path / "profile", "--dump-dom"))
    header, *rows = parsed.rows
    assert header[:4] == ["width", "epochs", "vs", "seeds"] and "verdict" in header and "McNemar p" in header
    by_width = {row[0]: dict(zip(header, row)) for row in rows}
    assert {w: r["verdict"] for w, r in by_width.items()} == {
        "32": stats.EQUIVALENT, "64": stats.DIFFERENT, "128": stats.SINGLE, "256": stats.INCONCLUSIVE}
    assert by_width["64"]["Δacc pp"] == "+2.00" and by_width["32"]["McNemar p"].startswith("≤ 1.00e+00")
    assert parsed.summary[0].startswith("scratchnn − keras over 4 configs: Δacc +0.56 pp, 95% CI [")
    assert parsed.summary[3] == "scratchnn vs keras per config: 1 equivalent, 1 different, 1 inconclusive, " \
                                "1 inconclusive (n=1) (of 4 configs)"
    assert any("?workflowType=machine_learning" in line for line in parsed.summary)


def test_screenshot_is_not_blank_and_shows_the_verdict_colours(page, tmp_path):
    png = tmp_path / "shot.png"
    colours = screenshot(page.as_uri(), png, tmp_path / "profile", size="1280,2000")
    assert colours > 50  # text, tables, badges and figures, not a blank or error page
    pixels = np.round(matplotlib.image.imread(png)[..., :3] * 255).astype(int)
    assert pixels.shape[:2] == (2000, 1280)
    assert (pixels.sum(axis=2) < 600).mean() > 0.02  # more than a few non-white pixels
    for verdict, hex_colour in COLOURS.items():
        rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(pixels - rgb).sum(axis=2) == 0).sum() > 100, verdict  # its badges and table cell
