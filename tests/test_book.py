"""Render the whole book at the ``smoke`` profile and check it as a reader would.

The build runs on a copy of the book sources in a temporary directory (so a developer's
``book/generated`` from ``make book`` is never overwritten), executes every chapter with
papermill, renders with ``jupyter-book build -W``, then

- checks every chapter's HTML holds every paper figure it promises (``dropkit.book.CHAPTERS``),
  as an embedded PNG with a caption naming the paper figure;
- loads every rendered page in headless Chromium and checks that no image is broken and no page
  shows a Python traceback.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from dropkit.book import CHAPTERS, GENERATED_DIR, build_book

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.book


@pytest.fixture(scope="module")
def rendered_book(tmp_path_factory) -> Path:
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
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    generated = [f.split("/")[-1] for f in files if f.startswith(str(GENERATED_DIR))]
    assert generated == list(CHAPTERS)
    for chapter in CHAPTERS:
        assert (ROOT / "notebooks" / f"{chapter}.py").is_file()


def test_every_chapter_has_a_parameters_cell_first():
    for chapter in CHAPTERS:
        text = (ROOT / "notebooks" / f"{chapter}.py").read_text()
        cells = re.split(r"^# %%", text, flags=re.M)[1:]
        code_cells = [c for c in cells if not c.lstrip(" ").startswith("[markdown]")]
        assert code_cells, f"{chapter} has no code cell"
        assert 'tags=["parameters"]' in code_cells[0].splitlines()[0], f"{chapter}: first code cell is not tagged parameters"
        for name in ("profile", "device", "results_dir", "seeds"):
            assert re.search(rf"^{name}\s*=", code_cells[0], flags=re.M), f"{chapter}: no {name} parameter"


def test_every_paper_figure_is_in_the_html(rendered_book):
    for chapter, figures in CHAPTERS.items():
        page = rendered_book / GENERATED_DIR / f"{chapter}.html"
        assert page.is_file(), f"{page} was not rendered"
        html = page.read_text()
        for figure in figures:
            match = re.search(
                rf'<figure id="paper-figure-{re.escape(figure)}"[^>]*>\s*<img src="data:image/png;base64,([A-Za-z0-9+/=]{{1000,}})"'
                rf'.*?<figcaption>(.*?)</figcaption>',
                html, flags=re.S)
            assert match, f"{chapter}: paper figure {figure} is missing or has no embedded PNG"
            number = re.match(r"[0-9]+", figure).group(0)
            assert f"Paper Figure {number}" in match.group(2)
        assert "Traceback (most recent call last)" not in html


def test_pages_render_in_a_browser(rendered_book):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    assert chromium and driver_path, "install Debian's chromium and chromium-driver (make system-deps)"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--allow-file-access-from-files"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    pages = sorted(p for p in rendered_book.rglob("*.html") if "_static" not in p.parts and p.name not in ("search.html", "genindex.html"))
    assert any(p.name == "index.html" for p in pages)
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        driver.get((rendered_book / "index.html").as_uri())  # a redirect to the intro page
        WebDriverWait(driver, 20).until(lambda d: d.current_url.endswith("book/intro.html"))
        pages = [p for p in pages if p.name != "index.html" or p.parent != rendered_book]
        for page in pages:
            driver.get(page.as_uri())
            WebDriverWait(driver, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")
            broken = driver.execute_script(
                "return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
                ".map(i => i.src.slice(0, 80));")
            assert broken == [], f"{page.name}: broken images {broken}"
            text = driver.execute_script("return document.body.innerText;")
            assert "Traceback (most recent call last)" not in text, f"{page.name} shows a traceback"
            errors = driver.execute_script(
                "return document.querySelectorAll('.output.error, .output.traceback').length;")
            assert errors == 0, f"{page.name} shows {errors} error outputs"
        for chapter, figures in CHAPTERS.items():
            driver.get((rendered_book / GENERATED_DIR / f"{chapter}.html").as_uri())
            for figure in figures:
                width = driver.execute_script(
                    f"return document.querySelector('#paper-figure-{figure} img').naturalWidth;")
                assert width > 100, f"{chapter}: figure {figure} image is {width}px wide"
    finally:
        driver.quit()


def test_chapters_describe_every_profile():
    """A chapter that looks a text up by profile (``{...}[profile]``) has an entry for each one,
    so ``-p profile <any known profile>`` never fails with a KeyError."""
    from dropkit.profiles import PROFILE_NAMES

    for chapter in CHAPTERS:
        text = (ROOT / "notebooks" / f"{chapter}.py").read_text()
        if "}[profile]" not in text:
            continue
        for name in PROFILE_NAMES:
            assert f'"{name}":' in text, f"{chapter} has no text for profile {name!r}"
