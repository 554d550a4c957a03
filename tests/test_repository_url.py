"""The repository's URL lives in one place (``[project.urls] Repository`` in pyproject.toml) and
``_config.yml``, the README and the book's pages agree with it (``.ci/repository_url.py``)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / ".ci" / "repository_url.py"


def _script():
    spec = importlib.util.spec_from_file_location("repository_url", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


repository_url = _script()


def _copy(tmp_path: Path) -> Path:
    for name in ("pyproject.toml", "_config.yml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "book", tmp_path / "book", ignore=shutil.ignore_patterns("generated"))
    return tmp_path


def _set_repository(root: Path, url: str) -> None:
    path = root / "pyproject.toml"
    current = tomllib.loads(path.read_text())["project"]["urls"]["Repository"]
    path.write_text(path.read_text().replace(f'Repository = "{current}"', f'Repository = "{url}"'))


def _run(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--root", str(root), *args],
                          capture_output=True, text=True, timeout=60)


def test_config_readme_and_book_agree_with_pyproject():
    url = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    assert repository_url.disagreements(ROOT) == []
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["repository"]["url"] == url
    # every page's footer says where the book is published
    assert config["html"]["extra_footer"] == repository_url.footer(url)
    assert f'<a href="{repository_url.pages_url(url)}">' in config["html"]["extra_footer"]
    readme = (ROOT / "README.md").read_text()
    assert readme.splitlines()[2] == repository_url.status_badge(url)  # under the title


def test_the_footer_names_the_published_book_and_the_repository():
    assert repository_url.footer("https://github.com/Alice/drop-fork") == (
        '<p>The published copy of this book is <a href="https://alice.github.io/drop-fork/">'
        'https://alice.github.io/drop-fork/</a>: the <code>book</code> workflow of its repository, '
        '<a href="https://github.com/Alice/drop-fork">Alice/drop-fork</a>, renders, checks and deploys '
        'it on every push to <code>main</code>.</p>')


@pytest.mark.parametrize("url, pages", [
    ("https://github.com/dropkit/dropkit", "https://dropkit.github.io/dropkit/"),
    ("https://github.com/Some-Org/drop.kit", "https://some-org.github.io/drop.kit/"),
    ("https://github.com/alice/Alice.github.io", "https://alice.github.io/"),
])
def test_pages_address_of_a_repository(url, pages):
    assert repository_url.pages_url(url) == pages


@pytest.mark.parametrize("url", [
    "https://github.com/dropkit/dropkit/", "https://github.com/dropkit/dropkit.git",
    "https://github.com/dropkit/dropkit/tree/main",
    "http://github.com/dropkit/dropkit", "https://gitlab.com/dropkit/dropkit", "github.com/dropkit/dropkit",
    "https://github.com/-bad/dropkit",
])
def test_a_repository_url_that_is_not_owner_and_name_is_refused(url, tmp_path):
    with pytest.raises(ValueError, match="https://github.com/OWNER/NAME"):
        repository_url.pages_url(url)
    root = _copy(tmp_path)
    _set_repository(root, url)
    result = _run(root, "--check")
    assert result.returncode == 2 and "is not of the form https://github.com/OWNER/NAME" in result.stderr


def test_a_fork_changes_the_url_once_and_make_repository_url_writes_the_rest(tmp_path):
    root = _copy(tmp_path)
    old = tomllib.loads((root / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    new = "https://github.com/Alice/drop-fork"
    _set_repository(root, new)

    check = _run(root, "--check")
    assert check.returncode == 1
    for place in ("_config.yml: repository.url", "_config.yml: html.extra_footer", "README.md: no status badge",
                  "README.md: the published book's address https://alice.github.io/drop-fork/"):
        assert place in check.stderr

    written = _run(root)
    assert written.returncode == 0, written.stderr
    assert set(written.stdout.split()) >= {"updated", "_config.yml", "README.md"}
    assert repository_url.disagreements(root) == []
    config = yaml.safe_load((root / "_config.yml").read_text())
    assert config["repository"] == {"url": new, "branch": "main"}
    assert config["html"]["extra_footer"] == repository_url.footer(new)
    assert "https://alice.github.io/drop-fork/" in config["html"]["extra_footer"]
    readme = (root / "README.md").read_text()
    assert repository_url.status_badge(new) in readme
    assert old not in readme and repository_url.pages_url(old) not in readme
    # everything else is untouched: the README differs from the original only in the URLs
    original = (ROOT / "README.md").read_text()
    assert readme.replace(new, "R").replace("https://alice.github.io/drop-fork/", "P") == \
        original.replace(old, "R").replace(repository_url.pages_url(old), "P")
    assert _run(root).stdout.split("\n")[0].startswith("repository ")  # a second run changes nothing


def test_a_hand_edited_link_that_disagrees_is_reported(tmp_path):
    root = _copy(tmp_path)
    readme = root / "README.md"
    readme.write_text(readme.read_text() + "\nSee https://someone.github.io/other/ and "
                      "https://github.com/someone/other/actions/workflows/test.yml.\n")
    problems = repository_url.disagreements(root)
    assert problems == [
        "README.md: GitHub Pages address https://someone.github.io/other/ is not under https://dropkit.github.io/dropkit/",
        "README.md: workflow link https://github.com/someone/other/actions/workflows/test.yml is not of https://github.com/dropkit/dropkit",
    ]


def test_a_config_without_the_footer_line_is_an_error_naming_it(tmp_path):
    root = _copy(tmp_path)
    config = root / "_config.yml"
    config.write_text("\n".join(line for line in config.read_text().splitlines()
                                if "extra_footer:" not in line) + "\n")
    assert "_config.yml: html.extra_footer is None" in "\n".join(repository_url.disagreements(root))
    result = _run(root)
    assert result.returncode == 2 and "_config.yml has no html.extra_footer line to set" in result.stderr
