"""The GitHub Actions workflows (``.github/workflows/``), checked here since no hosted runner is.

- ``actionlint`` and ``zizmor`` (offline: its audits that query GitHub are off) find nothing;
- every action is pinned by a full commit SHA with its version in a comment;
- every shell step is ``make <target>`` of this Makefile, so that nothing runs only on the hosted
  runner; the book workflow's check step runs ``tests/test_book.py`` (which ``make test`` runs on
  its own smoke-size render) on the rendered ``_build/html``, exercised here on a small site;
- the permissions are least-privilege and Pages deployments never overlap.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"

def _tool(name: str) -> Path:
    """``name`` installed beside this Python (the test extra of pyproject.toml), else on PATH."""
    beside = Path(sys.executable).parent / name
    found = beside if beside.is_file() else shutil.which(name)
    assert found, f"{name} is not installed: it comes with the test extra (make venv)"
    return Path(found)


ACTIONLINT = _tool("actionlint")
ZIZMOR = _tool("zizmor")
# `make -n` below must not inherit the flags and variables of a `make test` that runs this file.
MAKE_ENV = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
PINNED = re.compile(r"[\w.-]+/[\w./-]+@[0-9a-f]{40} # v[0-9]+\.[0-9]+\.[0-9]+")
MAKE_STEP = re.compile(r"make ([a-z][a-z0-9-]*)")


def _workflow_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml"))


def _load(path: Path) -> dict:
    workflow = yaml.safe_load(path.read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads the key `on` as True
    return workflow


def _lint(paths) -> list[tuple[str, subprocess.CompletedProcess]]:
    """(tool, its completed process) for actionlint and offline zizmor on ``paths``."""
    paths = [str(p) for p in paths]
    return [
        ("actionlint", subprocess.run([str(ACTIONLINT), "-no-color", "-oneline", *paths],
                                      capture_output=True, text=True, cwd=ROOT, timeout=120)),
        ("zizmor", subprocess.run([str(ZIZMOR), "--offline", "--no-progress", "--format", "plain", *paths],
                                  capture_output=True, text=True, cwd=ROOT, timeout=120)),
    ]


def _shell_steps(workflow: dict) -> list[str]:
    return [step["run"].strip() for job in workflow["jobs"].values()
            for step in job.get("steps", []) if "run" in step]


def _steps_not_make_targets(workflow: dict) -> list[str]:
    """The shell steps of ``workflow`` that are not ``make <target>`` of this repository's Makefile."""
    wrong = []
    for command in _shell_steps(workflow):
        match = MAKE_STEP.fullmatch(command)
        known = match and subprocess.run(["make", "-n", "-C", str(ROOT), match.group(1)],
                                         capture_output=True, text=True, env=MAKE_ENV).returncode == 0
        if not known:
            wrong.append(command)
    return wrong


def test_the_workflows_exist():
    assert {"book.yml", "test.yml"} <= {p.name for p in _workflow_files()}


def test_actionlint_and_zizmor_find_nothing():
    (_, linted), (_, audited) = _lint(_workflow_files())
    assert linted.returncode == 0 and linted.stdout == "", f"actionlint:\n{linted.stdout}{linted.stderr}"
    assert audited.returncode == 0, f"zizmor:\n{audited.stdout}{audited.stderr}"
    assert "No findings to report" in audited.stdout


def test_the_checks_catch_a_bad_workflow(tmp_path):
    """The same checks on a workflow with an injectable expression, a checkout that keeps its
    credentials, an action pinned by a tag and a shell step that is not a make target."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "name: bad\n"
        "on: pull_request\n"
        "permissions:\n  contents: read\n"
        "jobs:\n"
        "  build:\n"
        "    runs-on: ubuntu-24.04\n"
        "    steps:\n"
        "      - uses: actions/checkout@v4\n"
        "      - run: echo \"${{ github.event.pull_request.title }}\"\n")
    (actionlint, linted), (zizmor, audited) = _lint([bad])
    assert linted.returncode != 0 and "github.event.pull_request.title" in linted.stdout
    assert audited.returncode != 0
    assert "template-injection" in audited.stdout and "artipacked" in audited.stdout
    workflow = _load(bad)
    assert _steps_not_make_targets(workflow) == ['echo "${{ github.event.pull_request.title }}"']
    workflow["jobs"]["build"]["steps"][1]["run"] = "make no-such-target"
    assert _steps_not_make_targets(workflow) == ["make no-such-target"]
    assert not PINNED.fullmatch("actions/checkout@v4")


def test_every_action_is_pinned_by_commit_with_its_version():
    for path in _workflow_files():
        for line in path.read_text().splitlines():
            if re.match(r"\s*(- )?uses:", line):
                reference = line.split("uses:", 1)[1].strip()
                assert PINNED.fullmatch(reference), f"{path.name}: {reference!r} is not pinned by SHA # vX.Y.Z"


@pytest.mark.parametrize("name", [p.name for p in _workflow_files()])
def test_every_shell_step_is_a_make_target(name):
    workflow = _load(WORKFLOWS / name)
    assert _shell_steps(workflow), f"{name} runs nothing"
    assert _steps_not_make_targets(workflow) == []


def test_the_test_workflow_runs_the_readme_test_command_on_push_and_pull_request():
    workflow = _load(WORKFLOWS / "test.yml")
    assert set(workflow["on"]) == {"push", "pull_request"}
    assert _shell_steps(workflow) == ["make test"]
    assert "make test" in (ROOT / "README.md").read_text()
    job, = workflow["jobs"].values()
    assert job["container"].startswith("python:3.11-")  # Debian with the Python the README names
    cache = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/cache@"))
    assert "hashFiles('pyproject.toml')" in cache["with"]["key"]
    assert cache["with"]["path"] == job["env"]["PIP_CACHE_DIR"]


def test_the_book_workflow_renders_checks_uploads_and_deploys_from_main():
    workflow = _load(WORKFLOWS / "book.yml")
    assert _shell_steps(workflow) == ["make book", "make book-check"]
    build, deploy = workflow["jobs"]["build"], workflow["jobs"]["deploy"]
    upload = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["with"]["path"] == "_build/html"
    assert deploy["needs"] == "build"
    assert deploy["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    used = [s["uses"].split("@")[0] for s in deploy["steps"]]
    assert used == ["actions/download-artifact", "actions/upload-pages-artifact", "actions/deploy-pages"]
    assert deploy["steps"][0]["with"]["name"] == upload["with"]["name"]


def test_permissions_are_least_privilege_and_deployments_never_overlap():
    for path in _workflow_files():
        workflow = _load(path)
        assert workflow["permissions"] == {"contents": "read"}, path.name
        for name, job in workflow["jobs"].items():
            writes = {"pages": "write", "id-token": "write"}
            assert job.get("permissions") == (writes if (path.name, name) == ("book.yml", "deploy") else None)
            for step in job["steps"]:
                if step.get("uses", "").startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False, f"{path.name}: {name}"
    book = _load(WORKFLOWS / "book.yml")
    assert book["jobs"]["deploy"]["concurrency"] == {"group": "pages", "cancel-in-progress": False}
    # runs of one branch queue; only off `main` does a newer push cancel the running one
    assert book["concurrency"]["group"] == "book-${{ github.ref }}"
    assert book["concurrency"]["cancel-in-progress"] == "${{ github.ref != 'refs/heads/main' }}"


def _book_check_command(html: Path, *pytest_args: str) -> str:
    """The pytest command line of ``make book-check`` for ``html`` (what the workflow runs)."""
    printed = subprocess.run(["make", "-n", "-C", str(ROOT), "book-check", f"BOOK_HTML={html}",
                              f"PYTEST_ARGS={' '.join(pytest_args)}"],
                             capture_output=True, text=True, check=True, env=MAKE_ENV).stdout
    command, = [line for line in printed.splitlines() if "pytest tests/test_book.py" in line]
    return command


def _site(root: Path, link: str) -> Path:
    html = root / "_build" / "html"
    (html / "book").mkdir(parents=True)
    (html / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=book/intro.html" />')
    (html / "book" / "intro.html").write_text(f'<h1 id="top">dropkit</h1><a class="x" href="{link}">next</a>')
    (html / "book" / "api.html").write_text('<section id="quotas">quotas</section>')
    return html


def test_book_check_runs_the_test_suites_book_checks_on_a_given_html(tmp_path):
    """``make book-check``'s command runs tests/test_book.py on ``BOOK_HTML`` (not on a render
    of its own): its link check passes on a site whose links resolve and fails, naming the link,
    on one with a broken anchor; a folder without a rendered book is an error."""
    def run(html: Path) -> subprocess.CompletedProcess:
        command = _book_check_command(html, "-k", "test_every_internal_link_resolves", "-p", "no:cacheprovider")
        return subprocess.run(command, shell=True, cwd=ROOT, capture_output=True, text=True, timeout=300)

    good = run(_site(tmp_path / "good", "api.html#quotas"))
    assert good.returncode == 0 and "1 passed" in good.stdout, good.stdout[-2000:]
    broken = run(_site(tmp_path / "broken", "api.html#select"))
    assert broken.returncode == 1 and "api.html#select points to no anchor" in broken.stdout
    missing = run(tmp_path / "nothing")
    assert missing.returncode == 1 and "holds no rendered book" in missing.stdout
