"""Render the whole book at the ``smoke`` profile and check it as a reader would.

The build runs on a copy of the book sources in a temporary directory (so a developer's
``book/generated`` from ``make book`` is never overwritten), executes every chapter with
papermill, renders with ``jupyter-book build -W`` (an unresolved ``{numref}``, ``{doc}`` or
``{cite}`` fails the build), then

- checks every chapter's HTML holds every paper figure it promises (``dropkit.book.CHAPTERS``)
  as a numbered figure with the stable anchor ``paper-figure-<id>``, a PNG file that links to
  itself at full size, and a caption naming the paper figure;
- checks every internal link of every page points to an existing page and anchor;
- loads every rendered page in headless Chromium at a 1400-px window **with networking
  disabled**, and checks that no image is broken, every formula was typeset by the local
  MathJax (no raw TeX left in the text), no panel of any figure is narrower than
  ``MIN_PANEL_PX`` CSS pixels, and no page shows papermill's injected cell, a stderr block, an
  error output or a Python traceback;
- reads every page as a reader would at 800 and 1400 px (:func:`test_pages_read_well_at_800_and_1400_px`):
  no literal MyST/Markdown syntax, no warning text, no element wider than the content column,
  every figure numbered with legible text and followed by its command and CSV, every table
  captioned.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

from dropkit.book import CHAPTERS, GENERATED_DIR, build_book

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.book


#: A rendered book's ``_build/html`` to check instead of rendering one (``make book-check`` sets it
#: to the one ``make book`` rendered; the hosted book workflow checks the published book so).
BOOK_HTML_VARIABLE = "DROPKIT_BOOK_HTML"


@pytest.fixture(scope="module")
def rendered_book(tmp_path_factory) -> Path:
    """The ``_build/html`` under check: ``$DROPKIT_BOOK_HTML`` when set, else a smoke-profile
    render of a copy of the book sources."""
    given = os.environ.get(BOOK_HTML_VARIABLE)
    if given:
        html = Path(given)
        if not (html / "index.html").is_file():
            pytest.fail(f"{BOOK_HTML_VARIABLE}={given} holds no rendered book (no index.html): run `make book` first")
        return html
    root = tmp_path_factory.mktemp("book")
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    shutil.copytree(ROOT / "book", root / "book", ignore=shutil.ignore_patterns("generated"))
    if (ROOT / "results").is_dir():
        shutil.copytree(ROOT / "results", root / "results")
    index = build_book(root, "smoke")
    assert index.is_file(), f"jupyter-book did not write {index}"
    return root / "_build" / "html"


def test_toc_lists_exactly_the_book_chapters():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"], *(c["file"] for part in toc["parts"] for c in part["chapters"])]
    generated = [f.split("/")[-1] for f in files if f.startswith(str(GENERATED_DIR))]
    assert generated == list(CHAPTERS)
    for chapter in CHAPTERS:
        assert (ROOT / "notebooks" / f"{chapter}.py").is_file()


def test_every_chapter_has_a_folded_parameters_cell_first():
    for chapter in CHAPTERS:
        text = (ROOT / "notebooks" / f"{chapter}.py").read_text()
        cells = re.split(r"^# %%", text, flags=re.M)[1:]
        code_cells = [c for c in cells if not c.lstrip(" ").startswith("[markdown]")]
        assert code_cells, f"{chapter} has no code cell"
        assert 'tags=["parameters", "hide-input"]' in code_cells[0].splitlines()[0], \
            f"{chapter}: first code cell is not tagged parameters + hide-input"
        for name in ("profile", "device", "results_dir", "seeds"):
            assert re.search(rf"^{name}\s*=", code_cells[0], flags=re.M), f"{chapter}: no {name} parameter"


MIN_PANEL_PX = 330
WINDOW = (1400, 1000)


def _pages(rendered_book: Path) -> list[Path]:
    return sorted(p for p in rendered_book.rglob("*.html")
                  if "_static" not in p.parts and p.name not in ("search.html", "genindex.html", "py-modindex.html"))


def test_every_paper_figure_is_a_numbered_myst_figure(rendered_book):
    for chapter, figures in CHAPTERS.items():
        page = rendered_book / GENERATED_DIR / f"{chapter}.html"
        assert page.is_file(), f"{page} was not rendered"
        html = page.read_text()
        for figure in figures:
            match = re.search(
                rf'<figure class="[^"]*" id="paper-figure-{re.escape(figure)}">\s*'
                rf'<a class="reference internal image-reference" href="([^"]+\.png)">\s*<img[^>]*src="([^"]+\.png)"'
                rf'.*?<figcaption>(.*?)</figcaption>', html, flags=re.S)
            assert match, f"{chapter}: paper figure {figure} is missing, not a MyST figure or not linked"
            link, source, caption = match.groups()
            assert link == source and (page.parent / source).is_file(), f"{chapter}: figure {figure} image"
            number = re.match(r"[0-9]+", figure).group(0)
            assert re.search(rf'<span class="caption-number">Figure [0-9]+ </span>\s*<span class="caption-text">'
                             rf'\(paper Figure {number}[a-z]?\)', caption), \
                f"{chapter}: figure {figure} is not numbered 'Figure N (paper Figure {number})'"
        assert "data:image/png;base64" not in html
        assert "Traceback (most recent call last)" not in html


def test_figure_7_draws_the_cdbw_rule_the_scorecard_reads(rendered_book):
    """Chapter 04's Figure 7 draws the CDB-W curves of the rule the scorecard reads (the authors',
    whose rows every profile's cdbw set computes), and its caption names that rule."""
    import pandas as pd

    from dropkit import curves

    page = rendered_book / GENERATED_DIR / "04_cdbw.html"
    html = page.read_text()
    links = re.findall(r'href="([^"]*paper-figure-7\.csv)"', html)
    assert len(set(links)) == 1, links
    drawn = set(pd.read_csv(page.parent / links[0])["curve"])
    cdbw = {curve for curve in drawn if "CDB-W" in curve}
    assert cdbw == {curves.cdbw_rule_label(c, "authors") for c in ("EL2N+CDB-W", "CDB-W+EL2N", curves.CDBW_FULL_DATASET)}
    caption = re.search(r'id="paper-figure-7">.*?<figcaption>(.*?)</figcaption>', html, flags=re.S).group(1)
    assert re.search(r"the authors(&#8217;|\u2019|') rule, w_k = 1 \u2212 r_k", caption), caption[:600]
    assert "$" not in caption  # a glued text is not parsed for math


def test_every_internal_link_resolves(rendered_book):
    ids_of = {}
    for page in _pages(rendered_book):
        for href in re.findall(r'<a [^>]*href="([^"]+)"', page.read_text()):
            if re.match(r"[a-z]+:", href) or href.startswith("//"):
                continue
            path, _, anchor = href.partition("#")
            target = (page.parent / path).resolve() if path else page
            assert target.exists(), f"{page.name}: link {href} points to no file"
            if anchor and target.suffix == ".html":
                if target not in ids_of:
                    ids_of[target] = set(re.findall(r'\bid="([^"]+)"', target.read_text()))
                assert anchor in ids_of[target], f"{page.name}: link {href} points to no anchor"


def _offline_chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    assert chromium and driver_path, "install Debian's chromium and chromium-driver (make system-deps)"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--allow-file-access-from-files", f"--window-size={WINDOW[0]},{WINDOW[1]}",
                 # networking off: every http(s) request goes to a closed local port, no name resolves
                 "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
                 "--host-resolver-rules=MAP * ~NOTFOUND"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver_path), options=options)


# The page's reading text: code blocks (whose strings may hold TeX) and MathJax's own output left out.
_READING_TEXT = """
const copy = document.querySelector('main') ? document.querySelector('main').cloneNode(true) : document.body.cloneNode(true);
copy.querySelectorAll('pre, script, style, mjx-container, mjx-assistive-mml').forEach(e => e.remove());
return copy.textContent;
"""
# Sphinx writes every formula between \( \) or \[ \] (MathJax removes them when it typesets);
# a $...$ holding a TeX command is dollar math that MyST did not parse.
_RAW_TEX = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$[^$\n]*\\[a-zA-Z]+[^$\n]*\$")


def test_pages_read_well_in_an_offline_browser(rendered_book):
    from PIL import Image
    from selenium.webdriver.support.ui import WebDriverWait

    from dropkit.publish import PANEL_COLUMNS_KEY

    driver = _offline_chromium()
    pages = _pages(rendered_book)
    try:
        driver.get((rendered_book / "index.html").as_uri())  # a redirect to the landing page: the results
        WebDriverWait(driver, 20).until(lambda d: d.current_url.endswith("book/generated/00_results.html"))
        pages = [p for p in pages if p.name != "index.html" or p.parent != rendered_book]
        typeset_pages = 0
        for page in pages:
            driver.get(page.as_uri())
            WebDriverWait(driver, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")
            typeset = driver.execute_async_script(
                "const done = arguments[arguments.length - 1];"
                "if (!window.MathJax || !MathJax.startup) { done(document.querySelectorAll('.math').length ? 'no MathJax' : 'none'); }"
                "else { MathJax.startup.promise.then(() => done(document.querySelectorAll('mjx-container').length)); }")
            assert typeset != "no MathJax", f"{page.name}: MathJax did not load offline"
            typeset_pages += isinstance(typeset, int) and typeset > 0
            raw = _RAW_TEX.findall(driver.execute_script(_READING_TEXT))
            assert not raw, f"{page.name}: raw TeX {raw[:5]} left in the text"
            broken = driver.execute_script(
                "return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
                ".map(i => i.src.slice(0, 80));")
            assert broken == [], f"{page.name}: broken images {broken}"
            text = driver.execute_script("return document.body.innerText;")
            assert "Traceback (most recent call last)" not in text, f"{page.name} shows a traceback"
            assert "# Parameters" not in text, f"{page.name} shows papermill's injected cell"
            shown = driver.execute_script(
                "return ['.output.error', '.output.traceback', '.output.stderr', '.tag_injected-parameters']"
                ".map(s => document.querySelectorAll(s).length);")
            assert shown == [0, 0, 0, 0], f"{page.name}: error/traceback/stderr/injected cells {shown}"
            for src, width in driver.execute_script(
                    "return Array.from(document.querySelectorAll('figure img')).map(i => [i.src, i.clientWidth]);"):
                path = Path(src.removeprefix("file://"))
                columns = int(Image.open(path).text.get(PANEL_COLUMNS_KEY, "1"))
                assert width / columns >= MIN_PANEL_PX, \
                    f"{page.name}: {path.name} shows {columns} panels side by side in {width} px"
        assert typeset_pages >= len(CHAPTERS), f"formulas typeset on only {typeset_pages} pages"
    finally:
        driver.quit()


def test_every_chapter_setting_describes_every_profile():
    """Each experiment set's setting text has an entry for every profile, so ``-p profile
    <any known profile>`` never falls back to a bare profile name."""
    from dropkit.chapter import PAPER_DIFFERENCES
    from dropkit.profiles import EXPERIMENT_SETS, PROFILE_NAMES

    for experiment in EXPERIMENT_SETS:
        if experiment in PAPER_DIFFERENCES:
            assert set(PAPER_DIFFERENCES[experiment]) == set(PROFILE_NAMES), experiment
    for chapter in CHAPTERS:
        assert "}[profile]" not in (ROOT / "notebooks" / f"{chapter}.py").read_text()


# --------------------------------------------------------------------------- reading at 800 and 1400 px

WIDTHS = (800, 1400)
#: Smallest text (CSS px) a figure may show at the width it is displayed.
MIN_FIGURE_TEXT_PX = 10
#: Text that only unrendered MyST or Markdown leaves on a page.
_LITERAL_MARKUP = re.compile(r"```|:::|\{(?:table|numref|glue|glue:[a-z]+|download|doc|cite:[pt]|eval-rst)\}")
#: Text of a warning or an error printed by Python.
_PRINTED_PROBLEM = re.compile(r"\b[A-Z]\w*(?:Warning|Error): |Traceback \(most recent call last\)")

# One pass over a page: everything the checks need, in CSS pixels of the window.
_PAGE_REPORT = r"""
const article = document.querySelector('main article') || document.querySelector('main');
const box = article.getBoundingClientRect(), style = getComputedStyle(article);
const left = box.left + parseFloat(style.paddingLeft), right = box.right - parseFloat(style.paddingRight);
// Code listings (a cell's input, a docstring's example) may scroll sideways; nothing else may.
const scroller = e => e.closest('.cell_input, .highlight:not(.cell_output .highlight)');
const describe = e => e.tagName.toLowerCase() + (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ').join('.') : '')
                      + ' "' + (e.textContent || '').trim().slice(0, 60) + '"';
const wide = [];
for (const e of article.querySelectorAll('*')) {
  // a formula's box may be a few px wider than its scroll box (MathJax's own metrics): only its
  // outer edges count, which the element holding it reports
  if (scroller(e) || e.closest('mjx-container, .math') || e.matches('a.headerlink')) continue;  // "#" shows on hover only
  const r = e.getBoundingClientRect();
  if (r.width === 0 && r.height === 0) continue;
  if (r.right > right + 1 || r.left < left - 1) wide.push(describe(e) + ' spans ' + Math.round(r.left) + '-' + Math.round(r.right));
  else if (e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== 'visible')
    wide.push(describe(e) + ' scrolls: ' + e.scrollWidth + ' px in ' + e.clientWidth);
}
const copy = article.cloneNode(true);
// code (a docstring naming a role, a cell's source) may show markup; the prose may not
copy.querySelectorAll('pre, code, script, style, .cell_input, mjx-container, mjx-assistive-mml').forEach(e => e.remove());
const outputs = Array.from(article.querySelectorAll('.cell_output')).map(e => e.innerText).join('\n');
const emptyCode = Array.from(article.querySelectorAll('.cell_output pre')).filter(p => !p.textContent.trim()).length;
const position = e => Array.from(article.querySelectorAll('*')).indexOf(e);
const figures = Array.from(article.querySelectorAll('figure')).map(f => ({
  id: f.id, number: (f.querySelector('.caption-number') || {textContent: ''}).textContent.trim(),
  at: position(f), img: f.querySelector('img') ? [f.querySelector('img').src, f.querySelector('img').clientWidth] : null}));
const downloads = Array.from(article.querySelectorAll('a.download')).map(a => [position(a), a.getAttribute('href')]);
const commands = Array.from(article.querySelectorAll('code')).filter(c => /-m dropkit\.book --profile \S+ --chapter \S+/.test(c.textContent))
                      .map(c => position(c));
const tables = Array.from(article.querySelectorAll('table')).map(t => (t.querySelector('caption .caption-number') || {textContent: ''}).textContent.trim()
                      + ' | ' + (t.textContent || '').trim().slice(0, 60));
return {wide: wide.slice(0, 5), text: copy.textContent, outputs: outputs, emptyCode: emptyCode, figures: figures,
        downloads: downloads, commands: commands, tables: tables, stderr: article.querySelectorAll('.output.stderr').length};
"""


def test_pages_read_well_at_800_and_1400_px(rendered_book):
    """Every page, at a narrow (800 px) and a wide (1400 px) window, as a reader sees it: no
    literal MyST/Markdown (a fence whose info string holds a backtick is not a fence), no printed
    warning or stderr, no empty code box, no element wider than the content column (code
    listings may scroll), every figure numbered ("Figure N"), its smallest text at least
    ``MIN_FIGURE_TEXT_PX`` px at the displayed width, and followed (before the next figure) by
    its regeneration command and a link to a CSV file that exists and holds its numbers, and
    every table captioned and numbered."""
    from PIL import Image
    from selenium.webdriver.support.ui import WebDriverWait

    from dropkit.publish import CSS_DPI, DPI, MIN_FONT_KEY

    driver = _offline_chromium()
    pages = [p for p in _pages(rendered_book) if p.parent != rendered_book]
    problems = []
    try:
        for width in WIDTHS:
            driver.set_window_size(width, 1000)
            for page in pages:
                where = f"{page.relative_to(rendered_book)} at {width} px"
                driver.get(page.as_uri())
                WebDriverWait(driver, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")
                driver.execute_async_script(
                    "const done = arguments[arguments.length - 1];"
                    "if (window.MathJax && MathJax.startup) { MathJax.startup.promise.then(() => done()); } else { done(); }")
                report = driver.execute_script(_PAGE_REPORT)
                literal = _LITERAL_MARKUP.findall(report["text"])
                if literal:
                    problems.append(f"{where}: literal markup {literal[:3]}")
                printed = _PRINTED_PROBLEM.findall(report["text"]) + _PRINTED_PROBLEM.findall(report["outputs"])
                if printed or "/tmp/" in report["outputs"] or report["stderr"]:
                    problems.append(f"{where}: printed warnings/errors {printed[:3]}, stderr blocks {report['stderr']}")
                if report["emptyCode"]:
                    problems.append(f"{where}: {report['emptyCode']} empty code boxes in the output")
                if report["wide"]:
                    problems.append(f"{where}: wider than the content column: {report['wide']}")
                uncaptioned = [t for t in report["tables"] if not re.match(r"Table [0-9]+ \|", t)]
                if uncaptioned and "api" not in page.relative_to(rendered_book).parts:  # docstrings' tables are layout
                    problems.append(f"{where}: tables without a numbered caption: {uncaptioned[:3]}")
                figures = report["figures"]
                for i, figure in enumerate(figures):
                    if not re.fullmatch(r"Figure [0-9]+", figure["number"]):
                        problems.append(f"{where}: figure {figure['id']} is not numbered ({figure['number']!r})")
                    end = figures[i + 1]["at"] if i + 1 < len(figures) else float("inf")
                    links = [href for at, href in report["downloads"] if figure["at"] < at < end]
                    if not any(figure["at"] < at < end for at in report["commands"]):
                        problems.append(f"{where}: figure {figure['id']} has no regeneration command under it")
                    csvs = [page.parent / href for href in links if href.endswith(".csv")]
                    if len(csvs) != 1 or not csvs[0].is_file() or len(csvs[0].read_text().splitlines()) < 2:
                        problems.append(f"{where}: figure {figure['id']} has no CSV of its numbers under it ({links})")
                    if figure["img"]:
                        src, shown = figure["img"]
                        png = Image.open(Path(src.removeprefix("file://")))
                        smallest = float(png.text.get(MIN_FONT_KEY, "nan")) * shown / (png.width * CSS_DPI / DPI)
                        if not smallest >= MIN_FIGURE_TEXT_PX:
                            problems.append(f"{where}: figure {figure['id']}'s smallest text is {smallest:.1f} px")
    finally:
        driver.quit()
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:40])


def test_bibliography_labels_are_the_citations_author_year_text(rendered_book):
    """Chapters cite "(Vysogorets *et al.*, 2025)"; the bibliography labels the entry with the same
    text ("[Vysogorets et al., 2025]", book/_ext/author_year_bibliography.py), not "[VAK25]"."""
    html = (rendered_book / "book" / "references.html").read_text()
    labels = {re.sub(r"<[^>]+>", "", label) for label in re.findall(
        r'<span class="label"><span class="fn-bracket">\[</span>(.*?)<span class="fn-bracket">\]</span>', html)}
    assert "Vysogorets et al., 2025" in labels and "Sener and Savarese, 2018" in labels, labels
    cited = set()
    for page in (rendered_book / GENERATED_DIR).glob("*.html"):
        texts = {re.sub(r"<[^>]+>", "", text) for text in
                 re.findall(r'href="\.\./references\.html#[^"]+"[^>]*>(.*?)</a>', page.read_text())}
        cited |= {text for text in texts if re.search(r", [0-9]{4}[a-z]?$", text)}  # (Name, year); {cite:t} links the year alone
    assert cited and cited <= labels, f"citations without a matching label: {sorted(cited - labels)}"


def test_api_reference_is_one_page_per_module():
    """Every page under book/api/ documents one module under a heading naming it, and the table
    of contents lists exactly those pages under the API reference."""
    import importlib

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    entry = next(c for part in toc["parts"] for c in part["chapters"] if c["file"] == "book/api_reference")
    listed = [section["file"] for section in entry["sections"]]
    pages = sorted(f"book/api/{p.stem}" for p in (ROOT / "book" / "api").glob("*.md"))
    assert sorted(listed) == pages and len(pages) > 20
    for page in pages:
        text = (ROOT / f"{page}.md").read_text()
        modules = re.findall(r"^\.\. automodule:: (\S+)$", text, flags=re.M)
        assert len(modules) == 1 and text.startswith(f"# `{modules[0]}`\n"), page
        importlib.import_module(modules[0])
    # every module of the package (a subpackage's modules on its own page) has a page
    import pkgutil

    import dropkit

    documented = {re.findall(r"^\.\. automodule:: (\S+)$", (ROOT / f"{page}.md").read_text(), flags=re.M)[0]
                  for page in pages}
    top = {m.name for m in pkgutil.iter_modules(dropkit.__path__, "dropkit.") if not m.name.split(".")[-1].startswith("_")}
    assert top <= documented, f"modules without an API page: {sorted(top - documented)}"
