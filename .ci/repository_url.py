"""The repository's URL in one place: ``[project.urls] Repository`` in ``pyproject.toml``.

Everything else that names the repository or the published book derives from that value:

- ``_config.yml``: ``repository.url`` (the repository button of every page) and
  ``html.extra_footer`` (every page's footer: where the book is published, and by what);
- ``README.md`` (and any page under ``book/``): the test workflow's status badge, the links to
  the workflows and to the published book.

The book is published by ``.github/workflows/book.yml`` on GitHub Pages, whose address follows
from the repository's: ``https://github.com/OWNER/NAME`` is published at
``https://owner.github.io/NAME/`` (``https://owner.github.io/`` for a repository named
``OWNER.github.io``).

Usage (standard library only, no virtual environment needed)::

    python3 .ci/repository_url.py            # rewrite the derived values (``make repository-url``)
    python3 .ci/repository_url.py --check    # list every disagreement, exit 1 if there is one

The rewrite sets the two values of ``_config.yml`` and replaces the previous URL (the one
``_config.yml`` held) and its Pages address wherever they occur in ``README.md`` and ``book/*.md``. ``tests/test_repository_url.py`` fails while any file disagrees.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GITHUB_REPOSITORY = re.compile(r"https://github\.com/([A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)/([A-Za-z0-9._-]+)(?<!\.git)")
#: The workflow whose status badge the README shows.
TEST_WORKFLOW = "test.yml"
# A URL inside text ends before whitespace, a quote, a bracket or a trailing full stop.
_URL_END = r"(?=[\s\"'<>()\[\]]|\.(?:\s|$)|$)"
_PAGES = re.compile(r"https?://[A-Za-z0-9-]+\.github\.io(?:/[^\s\"'<>()\[\]]*?)?" + _URL_END)
_WORKFLOW_LINK = re.compile(r"https?://[^\s\"'<>()\[\]]+/actions/workflows/[^\s\"'<>()\[\]]*?" + _URL_END)


def repository_url(root: Path | str = ROOT) -> str:
    """``[project.urls] Repository`` of ``<root>/pyproject.toml``; ``ValueError`` when it is
    missing or not of the form ``https://github.com/OWNER/NAME``."""
    path = Path(root) / "pyproject.toml"
    urls = tomllib.loads(path.read_text())["project"].get("urls", {})
    url = urls.get("Repository")
    if url is None:
        raise ValueError(f"{path}: [project.urls] has no Repository entry")
    if not GITHUB_REPOSITORY.fullmatch(url):
        raise ValueError(f"{path}: [project.urls] Repository = {url!r} is not of the form "
                         "https://github.com/OWNER/NAME (no trailing slash, no .git)")
    return url


def pages_url(repository: str) -> str:
    """The GitHub Pages address of a repository's site, with its trailing slash.

    >>> pages_url("https://github.com/Some-Org/drop")
    'https://some-org.github.io/drop/'
    >>> pages_url("https://github.com/alice/Alice.github.io")
    'https://alice.github.io/'
    """
    match = GITHUB_REPOSITORY.fullmatch(repository)
    if not match:
        raise ValueError(f"{repository!r} is not of the form https://github.com/OWNER/NAME")
    owner, name = match.group(1).lower(), match.group(2)
    if name.lower() == f"{owner}.github.io":
        return f"https://{owner}.github.io/"
    return f"https://{owner}.github.io/{name}/"


def status_badge(repository: str) -> str:
    """The README's Markdown status badge of the test workflow, linked to its runs."""
    workflow = f"{repository}/actions/workflows/{TEST_WORKFLOW}"
    return f"[![tests]({workflow}/badge.svg)]({workflow})"


def footer(repository: str) -> str:
    """The HTML of every page's footer: the published book's address and the repository."""
    name = GITHUB_REPOSITORY.fullmatch(repository).group(0).removeprefix("https://github.com/")
    book = pages_url(repository)
    return (f'<p>The published copy of this book is <a href="{book}">{book}</a>: the <code>book</code> '
            f'workflow of its repository, <a href="{repository}">{name}</a>, renders, checks and '
            f'deploys it on every push to <code>main</code>.</p>')


def _expected_config(repository: str) -> dict[str, str]:
    """The values of ``_config.yml`` (as written there) that derive from ``repository``."""
    return {"url": repository, "extra_footer": f"'{footer(repository)}'"}  # a YAML single-quoted scalar


# (key, the top-level block of _config.yml that holds it)
_CONFIG_KEYS = {"url": "repository", "extra_footer": "html"}


def _config_line(text: str, key: str) -> re.Match | None:
    """The line ``  <key>: <value>`` of ``_config.yml``'s block that holds ``key``, as a match
    whose group 2 is the value as written."""
    block = re.search(rf"^{_CONFIG_KEYS[key]}:\n(?:[ \t]+.*\n|[ \t]*\n)*", text, flags=re.M)
    if block is None:
        return None
    line = re.compile(rf"^([ \t]+{key}:[ \t]*)(.*?)[ \t]*$", flags=re.M)
    return line.search(text, block.start(), block.end())


def _config_values(text: str) -> dict[str, str | None]:
    """The values of ``repository.url`` and ``html.extra_footer`` as written in ``_config.yml``
    (None where one is missing)."""
    values = {}
    for key in _CONFIG_KEYS:
        match = _config_line(text, key)
        values[key] = match.group(2) if match else None
    return values


def _text_files(root: Path) -> list[Path]:
    return [root / "README.md", *sorted((root / "book").glob("*.md"))]


def disagreements(root: Path | str = ROOT) -> list[str]:
    """Every place that disagrees with ``[project.urls] Repository``, one line each (empty
    when all agree)."""
    root = Path(root)
    repository = repository_url(root)
    problems = []
    config = _config_values((root / "_config.yml").read_text())
    for key, value in _expected_config(repository).items():
        if config[key] != value:
            problems.append(f"_config.yml: {_CONFIG_KEYS[key]}.{key} is {config[key]!r}, not {value!r}")
    book = pages_url(repository)
    for path in _text_files(root):
        if not path.is_file():
            continue
        text = path.read_text()
        name = path.relative_to(root).as_posix()
        for url in _PAGES.findall(text):
            if not url.rstrip("/").startswith(book.rstrip("/")):
                problems.append(f"{name}: GitHub Pages address {url} is not under {book}")
        for url in _WORKFLOW_LINK.findall(text):
            if not url.startswith(f"{repository}/actions/workflows/"):
                problems.append(f"{name}: workflow link {url} is not of {repository}")
    readme = (root / "README.md").read_text()
    if status_badge(repository) not in readme:
        problems.append(f"README.md: no status badge {status_badge(repository)}")
    if book not in readme:
        problems.append(f"README.md: the published book's address {book} is not given")
    return problems


def _replace_url(text: str, old: str, new: str) -> str:
    """``text`` with every occurrence of the URL ``old`` (not a longer URL it begins) as ``new``."""
    return re.sub(re.escape(old) + r"(?![A-Za-z0-9._-])", lambda _: new, text)


def _set_config_value(text: str, key: str, value: str) -> str:
    match = _config_line(text, key)
    if match is None:
        raise ValueError(f"_config.yml has no {_CONFIG_KEYS[key]}.{key} line to set; add one")
    return text[:match.start(2)] + value + text[match.end(2):]


def write(root: Path | str = ROOT) -> list[Path]:
    """Set every derived value from ``[project.urls] Repository``; return the files changed."""
    root = Path(root)
    repository = repository_url(root)
    config_path = root / "_config.yml"
    config = config_path.read_text()
    previous = _config_values(config)["url"]
    updated = {config_path: config}
    for key, value in _expected_config(repository).items():
        updated[config_path] = _set_config_value(updated[config_path], key, value)
    if previous and GITHUB_REPOSITORY.fullmatch(previous) and previous != repository:
        for path in _text_files(root):
            if path.is_file():
                text = _replace_url(path.read_text(), pages_url(previous), pages_url(repository))
                updated[path] = _replace_url(text, previous, repository)
    changed = []
    for path, text in updated.items():
        if path.read_text() != text:
            path.write_text(text)
            changed.append(path)
    return changed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report disagreements (exit 1 if any)")
    parser.add_argument("--root", default=str(ROOT), help="repository root (default: this checkout)")
    args = parser.parse_args(argv)
    root = Path(args.root)
    try:
        if not args.check:
            for path in write(root):
                print(f"updated {path.relative_to(root)}")
        problems = disagreements(root)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        fix = "" if not args.check else " (run `make repository-url`)"
        print(f"{len(problems)} disagreement(s) with pyproject.toml's [project.urls] Repository{fix}",
              file=sys.stderr)
        return 1
    print(f"repository {repository_url(root)}, book published at {pages_url(repository_url(root))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
