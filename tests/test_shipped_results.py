"""The shipped ``default``-profile results (``results/default/``) are complete, carry their
provenance, and reproduce: a few of the cheapest stored specs are re-run here on the CPU and must
give exactly the stored per-class recalls, class counts and metrics (CPU determinism with one
torch thread, as the sweep runs them), including one run with DRoP quotas over groups (a CoreSet
run, whose k-center order must keep every stored run's kept set, is re-run with the other score
methods from shared query trainings in ``tests/test_sweep_prefixes.py``).

The shipped rows were computed on an AMD EPYC with ATen's AVX2 kernels and MKL's Zen code path;
other kernels (ATen's AVX-512 ones, MKL's Intel paths) round some sums differently (a fresh run
differs in the last digits of a recall, or in a class count of a near-tied selection). So the
re-runs happen in a fresh interpreter with those kernels pinned (``dropkit.kernels``; with them
an Intel Xeon with AVX-512 and AMX computes the rows bit for bit, as the AMD EPYC did), and are
compared exactly where they computed with the row's kernels, otherwise within the measured
cross-CPU tolerance (``tests/shipped_reproduction.py``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dropkit.backfill_kernels import SHIPPED_AMD_EPYC
from dropkit.runner import run
from dropkit.spec import RunSpec
from dropkit.profiles import EXPERIMENT_SETS, experiment_specs, get_profile
from dropkit.store import ResultStore
from shipped_reproduction import assert_reproduces, check_pinned, cross_cpu_tolerance, rerun_environment

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ResultStore(ROOT / "results", "default")
CHAPTER_SETS = ("bias_benchmark", "drop_evaluation")
#: Everything a run computes that must not change when it is repeated on the same software.
REPRODUCED = (
    "cache_key", "query_key", "num_train", "class_sizes", "class_counts", "num_kept", "query_val_recalls",
    "test_recalls", "val_recalls", "test_accuracy", "test_worst_class", "test_gap", "test_std",
    "val_accuracy", "val_worst_class", "val_gap", "val_std", "final_epochs",
)
PROVENANCE = ("seconds", "train_seconds", "device_name", "dropkit_version", "torch_version", "numpy_version",
              "python_version", "git_revision", "finished_at", "cpu_vendor", "cpu_model", "cpu_capability",
              "mkl_code_path", "onednn_isa")
#: The processor and kernels of every row computed before issue 26 (``dropkit.backfill_kernels
#: --shipped-amd-epyc``: the AMD EPYC of results/default/README.md, ATen AVX2, MKL's Zen path).
SHIPPED_KERNELS = {name: SHIPPED_AMD_EPYC[name] for name in ("cpu_vendor", "cpu_capability", "mkl_code_path",
                                                            "onednn_isa")}
#: The shipped sweeps on the AMD EPYC ran before this time (UTC); later rows record their own machine.
AMD_SWEEPS_ENDED = "2026-11-30T00:00:00+00:00"


def check_kernels(row: dict) -> None:
    """A row records its processor and kernels (``kernel_environment`` may be None: not
    recorded, in a row backfilled with ``--this-machine``); a row of the AMD EPYC's sweeps says so."""
    assert all(row.get(name) is not None for name in PROVENANCE) and "kernel_environment" in row, row["cache_key"]
    if row["finished_at"] < AMD_SWEEPS_ENDED:
        assert {name: row[name] for name in SHIPPED_KERNELS} == SHIPPED_KERNELS, row["cache_key"]


_RERUN = """
import json, sys
import torch
torch.set_num_threads(1)  # the sweep runs every spec with one torch thread
from dropkit.runner import run
from dropkit.spec import RunSpec
from dropkit.store import ResultStore
assert torch.backends.cpu.get_cpu_capability() == sys.argv[3], torch.backends.cpu.get_cpu_capability()
spec = RunSpec.from_dict(json.loads(sys.argv[1]))
run(spec, ResultStore(sys.argv[2], "default"))
"""


def rerun(stored: dict, root: Path) -> dict:
    """Run the spec of a stored row in a fresh interpreter on the shipped rows' CPU kernels
    (pinned where possible, see ``tests/shipped_reproduction.py``); returns the new row as read
    back from its JSON file."""
    spec = RunSpec.from_dict(stored)
    assert spec.cache_key == stored["cache_key"]
    env, pinned = rerun_environment(stored)
    subprocess.run([sys.executable, "-c", _RERUN, json.dumps(spec.to_dict()), str(root), stored["cpu_capability"]],
                   check=True, env=env, cwd=ROOT)
    fresh = ResultStore(root, "default").read(spec.cache_key)
    check_pinned(fresh, pinned)
    return fresh


#: Every chapter's experiment set (chapters 02-07).
ALL_SETS = tuple(EXPERIMENT_SETS)


@pytest.fixture(scope="module")
def shipped() -> dict[str, dict]:
    """The stored rows of chapters 02 and 03."""
    keys = {spec.cache_key for experiment in CHAPTER_SETS for spec in experiment_specs("default", experiment)}
    rows = {row["cache_key"]: row for row in SHIPPED.rows() if row["cache_key"] in keys}
    assert rows, f"no shipped results of {CHAPTER_SETS} in {SHIPPED.path}"
    return rows


def test_every_chapter_is_shipped_complete_and_nothing_else():
    """Every run of chapters 02-07 at ``default`` is shipped, from committed code, and the store
    holds no row that no chapter reads (e.g. left over from an earlier profile definition)."""
    rows = {row["cache_key"]: row for row in SHIPPED.rows()}
    wanted = {}
    for experiment in ALL_SETS:
        specs = experiment_specs("default", experiment)
        missing = [spec.label() for spec in specs if spec.cache_key not in rows]
        assert not missing, f"{experiment}: {len(missing)} of {len(specs)} runs are not shipped, e.g. {missing[:3]}"
        wanted.update({spec.cache_key: spec for spec in specs})
    assert set(rows) == set(wanted), f"{len(set(rows) - set(wanted))} shipped rows belong to no chapter"
    for key, row in rows.items():
        assert RunSpec.from_dict(row).cache_key == key == wanted[key].cache_key  # every field that counts
        assert not row["git_revision"].endswith("-dirty"), "shipped rows must come from committed code"
        check_kernels(row)
    group_rows = [r for r in rows.values() if r["dataset"] == "spurious-fashion-mnist"]
    assert group_rows and all(sum(r["group_counts"]) == r["num_kept"] for r in group_rows)


def test_the_readme_counts_the_shipped_rows():
    """``results/default/README.md`` states how many rows ship; it says what the store holds."""
    import re

    text = (ROOT / "results" / "default" / "README.md").read_text()
    stated = re.search(r"(\d+) distinct runs in all: (\d+) of the MLP .* and (\d+) of the CNN", text.replace("\n", " "))
    rows = list(SHIPPED.rows())
    assert stated, "the README's count of shipped rows"
    assert tuple(map(int, stated.groups())) == (len(rows), sum(r["model"] == "mlp" for r in rows),
                                                sum(r["model"] == "cnn" for r in rows))


def test_the_reproduce_page_counts_each_chapters_runs():
    """``book/reproduce.md``'s per-chapter table states the runs at seeds 0-4 and at the book's
    seeds: both are what the profile's specs give (it went stale once when seeds were added)."""
    import re

    text = (ROOT / "book" / "reproduce.md").read_text()
    table = text.split(":name: reproduce-chapters", 1)[1].split(":::", 1)[0]
    stated = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[2].isdigit():
            words = re.findall(r"[a-z_]+(?:-[a-z-]+)?", cells[1].replace("`", ""))
            experiments = tuple(w for w in words if w in ALL_SETS)
            setup = next((w for w in words if w.endswith("fashion-mnist")), None)
            stated[(experiments, setup)] = (int(cells[2]), int(cells[4]))
    assert len(stated) == 7, f"the table's rows: {sorted(stated)}"
    for (experiments, setup), (first, full) in stated.items():
        def runs(seeds):
            return len({spec.cache_key for experiment in experiments
                        for spec in experiment_specs("default", experiment, setup=setup, seeds=seeds)})
        assert (first, full) == (runs([0, 1, 2, 3, 4]), runs(None)), (experiments, setup)


def test_every_run_of_both_chapters_is_shipped_with_provenance(shipped):
    for experiment in CHAPTER_SETS:
        specs = experiment_specs("default", experiment)
        missing = [spec.label() for spec in specs if spec.cache_key not in shipped]
        assert not missing, f"{experiment}: {len(missing)} of {len(specs)} runs are not shipped, e.g. {missing[:3]}"
    mlp = [r for r in shipped.values() if r["model"] == "mlp"]
    cnn = [r for r in shipped.values() if r["model"] == "cnn"]
    # per seed: MLP 31 + 41 runs, 16 of them shared by the two chapters (full dataset, Random, EL2N,
    # Forgetting); CNN 13 + 21, 9 shared (full dataset, Random, EL2N)
    default = get_profile("default")
    for rows, setup, (bias, drop, both) in ((mlp, "mlp-fashion-mnist", (31, 41, 16)),
                                            (cnn, "cnn-fashion-mnist", (13, 21, 9))):
        a, b = (set(default.seeds_for(e, setup)) for e in CHAPTER_SETS)
        assert len(rows) == bias * len(a) + drop * len(b) - both * len(a & b), setup
    assert len(shipped) == len(mlp) + len(cnn)
    for row in shipped.values():
        assert all(row.get(name) is not None for name in PROVENANCE), row["cache_key"]
        assert row["seconds"] > 0 and row["train_seconds"] > 0
        assert not row["git_revision"].endswith("-dirty"), "shipped rows must come from committed code"
        check_kernels(row)
        assert RunSpec.from_dict(row).cache_key == row["cache_key"]


def cheapest(shipped: dict[str, dict]) -> list[dict]:
    """The MLP's Random, Random+DRoP and EL2N at the lowest density of seed 0: the last two share one
    (short, EL2N) query training, so three runs cost about one full-dataset run."""
    rows = [r for r in shipped.values() if r["seed"] == 0 and r["model"] == "mlp"]
    lowest = min(r["density"] for r in rows)
    chosen = [
        r for r in rows if r["density"] == lowest and (
            r["protocol"] in ("random", "random+drop") or (r["protocol"] == "strategy" and r["method"] == "el2n"))
    ]
    assert len(chosen) == 3, [(r["protocol"], r["method"]) for r in chosen]
    return sorted(chosen, key=lambda r: r["protocol"])


@pytest.mark.slow
def test_cheapest_shipped_runs_reproduce_exactly(shipped, tmp_path):
    for stored in cheapest(shipped):
        fresh = rerun(stored, tmp_path)
        assert_reproduces(fresh, stored, REPRODUCED, RunSpec.from_dict(stored).label())


@pytest.mark.slow
def test_a_shipped_group_quota_run_reproduces_exactly(tmp_path):
    rows = [r for r in SHIPPED.rows() if r.get("drop_over") == "groups" and r["protocol"] == "random+drop"
            and r["seed"] == 0]
    assert rows, "no shipped Random+DRoP run with quotas over groups"
    stored = min(rows, key=lambda r: r["density"])
    fresh = rerun(stored, tmp_path)
    assert_reproduces(fresh, stored, (*REPRODUCED, "group_counts", "query_val_group_recalls", "test_group_recalls",
                                      "test_worst_group"), RunSpec.from_dict(stored).label())


# CoreSet's shipped row (and Forgetting's, Dynamic Uncertainty's, EL2N's and GraNd's) re-run from
# shared query trainings: tests/test_sweep_prefixes.py, the bias benchmark's test.


def reproducible(rows) -> list[dict]:
    """The rows a CPU test can re-run exactly: those computed on the CPU. Rows of another device
    (a GPU tier's) are not bitwise reproducible there; their schema is checked instead."""
    return [r for r in rows if RunSpec.from_dict(r).device == "cpu"]


def test_every_shipped_row_has_the_schema_of_a_run_row(shipped):
    """GPU rows are skipped by the re-runs below, not by this check: every row, on any device,
    carries the reproduced columns, its provenance and the device it ran on."""
    for row in shipped.values():
        missing = [name for name in (*REPRODUCED, *PROVENANCE, "device") if name not in row]
        assert not missing, f"{row['cache_key']}: missing {missing}"
        assert len(row["test_recalls"]) == len(row["class_sizes"]) == len(row["class_counts"]) == 10
        assert sum(row["class_counts"]) == row["num_kept"]


@pytest.mark.slow
def test_a_shipped_cnn_run_reproduces_exactly(shipped, tmp_path):
    """The convolutional setting's cheapest CPU row (Random at its lowest density, seed 0: 15
    augmented epochs of NHWC training on 10% of Fashion-MNIST) re-runs to the same numbers."""
    rows = [r for r in reproducible(shipped.values()) if r["model"] == "cnn" and r["seed"] == 0
            and r["protocol"] == "random"]
    assert rows, "no shipped CPU row of the CNN setting"
    stored = min(rows, key=lambda r: r["density"])
    assert stored["augment"] and stored["channels_last"] and stored["cpu_capability"] == "AVX2"
    fresh = rerun(stored, tmp_path)
    assert_reproduces(fresh, stored, REPRODUCED, RunSpec.from_dict(stored).label())


def test_a_rerun_is_compared_exactly_on_the_rows_kernels_and_within_the_measured_tolerance_on_others(shipped):
    """``assert_reproduces``: with the row's kernels (ATen AVX2, MKL's Zen path: the pin, on
    any processor) the last digit of a recall counts; with other kernels a difference up to the
    tolerance measured in ``results/default/cross_cpu.json`` passes, a larger one fails, and the
    message says which comparison was made."""
    stored = cheapest(shipped)[0]
    label = RunSpec.from_dict(stored).label()
    recalls = stored["test_recalls"]
    nudged = {**stored, "cpu_vendor": "GenuineIntel", "cpu_model": "Intel(R) Xeon(R) Processor",
              "test_recalls": [recalls[0] + 0.002, *recalls[1:]]}
    assert_reproduces({**stored, "cpu_model": "Intel(R) Xeon(R) Processor"}, stored, REPRODUCED, label)
    with pytest.raises(AssertionError, match="test_recalls differs; computed with the row's kernels.*exactly"):
        assert_reproduces(nudged, stored, REPRODUCED, label)
    tolerance, measured = cross_cpu_tolerance()
    assert tolerance["test_recalls"] >= 0.002 and "cross_cpu.json" in measured
    other = {**nudged, "mkl_code_path": "intel"}
    assert_reproduces(other, stored, REPRODUCED, label)                          # 0.002: within
    beyond = {**other, "test_recalls": [recalls[0] + 1.5 * tolerance["test_recalls"], *recalls[1:]]}
    with pytest.raises(AssertionError, match="differ from the row's.*measured cross-CPU tolerance"):
        assert_reproduces(beyond, stored, REPRODUCED, label)
    with pytest.raises(AssertionError, match="num_train differs"):                 # not a kernel's number
        assert_reproduces({**other, "num_train": stored["num_train"] - 1}, stored, REPRODUCED, label)


def test_the_learning_rate_check_ships_exactly_its_pre_registered_runs_sealed_with_provenance():
    """Chapter 04's learning-rate check (``results/lower-lr``): every run of
    ``cdbw_rules.learning_rate_check_specs`` and nothing else, each a valid sealed row (the store
    reads it) computed from a committed revision."""
    import warnings

    from dropkit.cdbw_rules import learning_rate_check_specs

    store = ResultStore(ROOT / "results" / "lower-lr", "default")
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                 # an unreadable or unsealed row fails
        rows = store.rows()
    assert {row["cache_key"] for row in rows} == {spec.cache_key for spec in learning_rate_check_specs()}
    for row in rows:
        check_kernels(row)
        assert row["lr"] == 0.01 and not str(row["git_revision"]).endswith("-dirty"), row["cache_key"]
