"""The `dropkit` command: prune on plain files, sweep/results, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dropkit.cli import main
from dropkit.store import ResultStore

# 10 samples: class 0 = indices 0..5, class 1 = indices 6..9.
LABELS = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])


@pytest.fixture
def files(tmp_path):
    paths = {
        "labels": tmp_path / "labels.npy",
        "scores": tmp_path / "scores.npy",
        "recalls": tmp_path / "recalls.npy",
    }
    np.save(paths["labels"], LABELS)
    np.save(paths["scores"], np.arange(10, dtype=np.float64))
    np.save(paths["recalls"], np.array([0.5, 0.75]))
    paths["out"] = tmp_path / "keep.npy"
    return paths


def prune(files, *extra, output=None):
    argv = ["prune", "--labels", str(files["labels"]), "--density", "0.5",
            "--output", str(output or files["out"]), *extra]
    return main(argv)


def test_prune_random_is_seeded(files, capsys):
    assert prune(files, "--seed", "3") == 0
    keep = np.load(files["out"])
    assert keep.dtype == np.int64 and len(keep) == 5
    assert np.all(np.diff(keep) > 0) and keep.min() >= 0 and keep.max() <= 9
    assert "kept 5 of 10 samples (density 0.5, random)" in capsys.readouterr().out
    again = files["out"].with_name("again.npy")
    assert prune(files, "--seed", "3", output=again) == 0
    np.testing.assert_array_equal(np.load(again), keep)


def test_prune_by_scores_keeps_the_top(files):
    assert prune(files, "--scores", str(files["scores"])) == 0
    np.testing.assert_array_equal(np.load(files["out"]), [5, 6, 7, 8, 9])


def test_prune_drop_quotas_paper_and_counts_rules(files):
    # paper rule: d_k = c (1 - r_k): 6*0.5c + 4*0.25c = 5 -> amounts 3.75, 1.25 -> [4, 1]
    assert prune(files, "--recalls", str(files["recalls"]), "--quotas", "drop") == 0
    keep = np.load(files["out"])
    assert np.bincount(LABELS[keep]).tolist() == [4, 1]
    # counts rule: n_k = c (1 - r_k): 0.5c + 0.25c = 5 -> amounts 3.33, 1.67 -> [3, 2]
    counts_out = files["out"].with_name("counts.npy")
    assert prune(files, "--recalls", str(files["recalls"]), "--quotas", "counts",
                 output=counts_out) == 0
    assert np.bincount(LABELS[np.load(counts_out)]).tolist() == [3, 2]


def test_prune_strategy_within_drop_quotas(files):
    assert prune(files, "--scores", str(files["scores"]), "--recalls", str(files["recalls"])) == 0
    np.testing.assert_array_equal(np.load(files["out"]), [2, 3, 4, 5, 9])


def test_prune_random_within_strategy_quotas(files):
    assert prune(files, "--scores", str(files["scores"]), "--quotas", "strategy") == 0
    keep = np.load(files["out"])
    # the top-5 scores hold 1 sample of class 0 and 4 of class 1
    assert np.bincount(LABELS[keep]).tolist() == [1, 4]
    assert set(keep[LABELS[keep] == 1]) == {6, 7, 8, 9}


def test_prune_drop_quotas_over_groups(files, capsys):
    # groups: class 0 = group 0 (indices 0..3) + group 1 (4, 5); class 1 = group 2 (6..9).
    groups = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
    np.save(files["labels"].with_name("groups.npy"), groups)
    np.save(files["recalls"].with_name("group_recalls.npy"), np.array([0.9, 0.2, 0.8]))
    # d_g = c (0.1, 0.8, 0.2): 4*0.1c + 2*0.8c + 4*0.2c = 2.8c = 5; group 1 saturates at 2, then
    # 4*0.1c + 4*0.2c = 1.2c = 3 -> amounts 1, 2 -> [1, 2, 2]
    assert prune(files, "--recalls", str(files["recalls"].with_name("group_recalls.npy")),
                 "--groups", str(files["labels"].with_name("groups.npy"))) == 0
    keep = np.load(files["out"])
    assert np.bincount(groups[keep], minlength=3).tolist() == [1, 2, 2]
    assert "quotas over groups); per class [3, 2]; per group [1, 2, 2]" in capsys.readouterr().out
    other = files["out"].with_name("other.npy")
    group_file = str(files["labels"].with_name("groups.npy"))
    for extra, message in (([], "--groups sets DRoP quotas over groups: it needs --recalls (per group)"),
                           (["--recalls", str(files["recalls"])], "--recalls has 2 values but --groups holds group ids 0..2: expected one recall per group (3 values)")):
        assert prune(files, "--groups", group_file, *extra, output=other) != 0
        assert message in capsys.readouterr().err
        assert not other.exists()


def test_prune_csv_in_and_out(tmp_path, files):
    labels = tmp_path / "labels.csv"
    labels.write_text("label\n" + "\n".join(map(str, LABELS)) + "\n")
    scores = tmp_path / "scores.csv"
    scores.write_text(",".join(str(float(v)) for v in range(10)) + "\n")
    out = tmp_path / "keep.csv"
    assert main(["prune", "--labels", str(labels), "--scores", str(scores), "--density", "0.3",
                 "--output", str(out)]) == 0
    assert out.read_text().split() == ["7", "8", "9"]


def test_force_overwrites(files):
    files["out"].write_bytes(b"old")
    assert prune(files, "--force") == 0
    assert len(np.load(files["out"])) == 5


@pytest.mark.parametrize("option", ["labels", "recalls"])
def test_force_never_overwrites_an_input(files, capsys, option):
    """Issue 14, item 4."""
    before = files[option].read_bytes()
    code = prune(files, "--recalls", str(files["recalls"]), "--force", output=files[option])
    check_error(capsys, code, f"--output {files[option]} is the --{option} input file")
    assert files[option].read_bytes() == before


def test_an_unwritable_output_is_named_as_output(files, capsys, monkeypatch):
    """Issue 14, item 5: the error names --output, not the temporary file."""
    import dropkit.store

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "/somewhere/.keep.npy.x1y2.tmp")

    monkeypatch.setattr(dropkit.store.tempfile, "mkstemp", refuse)
    check_error(capsys, prune(files), f"--output {files['out']}: cannot write (Permission denied)")
    assert not files["out"].exists()
    if Path("/proc").is_dir():
        monkeypatch.undo()
        check_error(capsys, prune(files, output=Path("/proc/out.npy")), "--output /proc/out.npy: cannot write")


def test_version(capsys):
    from dropkit import __version__

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"dropkit {__version__}"


def check_error(capsys, code, match):
    """A failed command: non-zero status, exactly one stderr line matching, no traceback."""
    captured = capsys.readouterr()
    assert code != 0
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("dropkit")
    assert "Traceback" not in captured.err
    assert match in lines[0], lines[0]


def bad_files(tmp_path):
    made = {}
    for name, array in {
        "negative.npy": np.array([0, -1, 1]),
        "fractional.npy": np.array([0.0, 0.5, 1.0]),
        "short_scores.npy": np.arange(4.0),
        "nan_scores.npy": np.array([1.0, np.nan] + [0.0] * 8),
        "bad_recalls.npy": np.array([0.5, 1.5]),
        "one_recall.npy": np.array([0.5]),
        "three_recalls.npy": np.array([0.5, 0.5, 0.5]),
        "huge_label.npy": np.array([0] * 9 + [10**12]),
        "matrix.npy": np.zeros((3, 4)),
    }.items():
        np.save(tmp_path / name, array)
        made[name] = str(tmp_path / name)
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    made["objects.npy"] = str(tmp_path / "objects.npy")
    (tmp_path / "labels.json").write_text("[0, 1]")
    made["labels.json"] = str(tmp_path / "labels.json")
    (tmp_path / "words.csv").write_text("a\nb\nc\n")
    (tmp_path / "text.npy").write_text("0\n1\n0\n")
    made["text.npy"] = str(tmp_path / "text.npy")
    made["words.csv"] = str(tmp_path / "words.csv")
    return made


PRUNE_ERRORS = [
    (["--density", "0"], "--density must be in (0, 1]"),
    (["--density", "1.5"], "--density must be in (0, 1]"),
    (["--density", "half"], "invalid float value"),
    (["--labels", "{missing}"], "no such file"),
    (["--labels", "{labels.json}"], "unsupported file type"),
    (["--labels", "{negative.npy}"], "--labels"),
    (["--labels", "{fractional.npy}"], "--labels must hold integer ids"),
    (["--labels", "{objects.npy}"], "cannot read numbers"),
    (["--labels", "{matrix.npy}"], "expected a non-empty 1-D array"),
    (["--labels", "{words.csv}"], "cannot read numbers"),
    (["--scores", "{short_scores.npy}"], "--scores has 4 values but --labels has 10"),
    (["--scores", "{nan_scores.npy}"], "--scores holds 1 NaN/inf values"),
    (["--recalls", "{bad_recalls.npy}"], "--recalls must hold per-class recalls in [0, 1]"),
    (["--recalls", "{one_recall.npy}"], "--recalls has 1 values but --labels holds class ids 0..1: "
                                         "expected one recall per class (2 values)"),
    # issue 14: each of these used to crash, write something, or pass silently
    (["--labels", "{huge_label.npy}"], "--labels holds id 1000000000000; expected dense ids 0..K-1"),  # 1
    (["--density", "0.001"], "--density=0.001 keeps round(0.001 * 10) = 0 of 10 samples"),  # 2
    (["--recalls", "{three_recalls.npy}"], "--recalls has 3 values but --labels holds class ids 0..1"),  # 3
    (["--labels", "{text.npy}"], "not a NumPy .npy file (no .npy header); name a text file .csv"),  # 17
    (["--quotas", "drop"], "--quotas drop needs --recalls"),
    (["--quotas", "strategy"], "--quotas strategy needs --scores"),
    (["--quotas", "fair"], "invalid choice"),
    (["--seed", "-2"], "--seed -2"),
    (["--output", "{out}"], "already exists; pass --force"),
    (["--output", "{nodir}"], "does not exist"),
    (["--output", "{tmp}/keep.txt"], "use a .npy or .csv file name"),
]


@pytest.mark.parametrize("extra, match", PRUNE_ERRORS)
def test_prune_bad_inputs_are_one_line_errors(tmp_path, files, capsys, extra, match):
    names = {**bad_files(tmp_path), "missing": str(tmp_path / "missing.npy"),
             "out": str(files["out"]), "nodir": str(tmp_path / "no" / "keep.npy"),
             "tmp": str(tmp_path)}
    files["out"].write_bytes(b"precious")
    argv = {"--labels": str(files["labels"]), "--density": "0.5",
            "--output": str(files["out"]), "--force": None}
    if "{out}" in extra:
        argv.pop("--force")
    for flag, value in zip(extra[::2], extra[1::2]):
        for name, path in names.items():
            value = value.replace("{" + name + "}", path)
        argv[flag] = value
    command = ["prune"]
    for flag, value in argv.items():
        command += [flag] if value is None else [flag, value]
    check_error(capsys, invoke(command), match)
    assert files["out"].read_bytes() == b"precious"  # nothing written over the output


def invoke(argv) -> int:
    """Run the command in-process; argparse usage errors exit via SystemExit (status 2)."""
    try:
        return main(argv)
    except SystemExit as exit_info:
        return exit_info.code


# --------------------------------------------------------------------------- sweep / results


def store_snapshot(root: Path) -> dict:
    return {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()} \
        if root.exists() else {}


SWEEP_ERRORS = [
    (["--profile", "fastest", "--experiment", "cdbw"], "invalid choice: 'fastest'", 2),
    (["--profile", "smoke", "--experiment", "theory"], "invalid choice: 'theory'", 2),
    (["--profile", "smoke", "--experiment", "cdbw", "--set", "learning_rate=1"],
     "unknown override(s) ['learning_rate']", 1),
    (["--profile", "smoke", "--experiment", "cdbw", "--set", "epochs"], "expected NAME=VALUE", 1),
    (["--profile", "smoke", "--experiment", "cdbw", "--densities", "0,2"], "densities", 1),
    (["--profile", "smoke", "--experiment", "cdbw", "--densities", "a,b"],
     "expected comma-separated numbers", 1),
    (["--profile", "smoke", "--experiment", "cdbw", "--seeds", "-1"], "seeds", 1),
    (["--profile", "smoke", "--experiment", "cdbw", "--dataset", "mnist"],
     "dataset='mnist' is not used", 1),
    (["--profile", "smoke", "--experiment", "cdbw", "--model", "gpt"], "model='gpt' is not known", 1),
    (["--profile", "smoke", "--experiment", "cdbw", "--device", "tpu"], "device='tpu'", 1),
    (["--profile", "smoke", "--experiment", "cdbw", "--workers", "64"], "oversubscribes", 1),
    (["--profile", "smoke", "--experiment", "cdbw", "--data-root", "/no/such/dir"],
     "data_root='/no/such/dir' is not a directory", 1),
    (["--profile", "smoke", "--experiment", "cdbw", "--results-dir", "{file}/results"],
     "is not writable", 1),
    (["--profile", "paper", "--experiment", "waterbirds"], "pretrained_path", 1),
    # issue 14, item 6: 0 is not "the default"
    (["--profile", "smoke", "--experiment", "cdbw", "--workers", "0"], "--workers 0 must be a positive integer", 1),
    (["--profile", "smoke", "--experiment", "cdbw", "--threads", "0"], "--threads 0 must be a positive integer", 1),
]


@pytest.mark.parametrize("argv, match, status", SWEEP_ERRORS)
def test_sweep_bad_inputs_leave_the_store_unchanged(tmp_path, capsys, argv, match, status):
    results = tmp_path / "results"
    ResultStore(results, "smoke").write({"cache_key": "0" * 64, "kept": True})
    before = store_snapshot(results)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    argv = [a.format(file=blocker) for a in argv]
    if "--results-dir" not in argv:
        argv += ["--results-dir", str(results)]
    code = invoke(["sweep", *argv, "--no-progress"])
    assert code == status
    check_error(capsys, code, match)
    assert store_snapshot(results) == before


def test_results_of_an_empty_store_is_an_error_naming_the_path(tmp_path, capsys):
    assert main(["results", "--profile", "smoke", "--results-dir", str(tmp_path)]) == 1
    check_error(capsys, 1, f"no results stored in {tmp_path / 'smoke' / 'runs'}")


def test_sweep_on_slurm_without_slurm_is_an_error(tmp_path, capsys, monkeypatch):
    """Issue 14, item 7: no silent local fallback of submitit's cluster detection."""
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch
    code = main(["sweep", "--profile", "smoke", "--experiment", "cdbw", "--executor", "slurm",
                 "--results-dir", str(tmp_path / "results"), "--no-progress"])
    check_error(capsys, code, "--executor slurm: no Slurm here (sbatch is not on PATH)")
    assert not (tmp_path / "results").exists()


def test_results_dir_defaults_to_the_checkout_not_the_working_directory(tmp_path, monkeypatch):
    """Issue 14, item 16: from any directory, the checkout's results/ (or $DROPKIT_RESULTS)."""
    from dropkit.store import default_results_dir

    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DROPKIT_RESULTS", raising=False)
    assert default_results_dir() == root / "results"
    shown = subprocess.run(dropkit_command() + ["results", "--profile", "default", "--experiment",
                                                "cdbw"], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert f"runs in {root / 'results' / 'default'}" in shown.stdout
    monkeypatch.setenv("DROPKIT_RESULTS", str(tmp_path / "elsewhere"))
    assert default_results_dir() == tmp_path / "elsewhere"
    shown = subprocess.run(dropkit_command() + ["results", "--profile", "default"],
                           capture_output=True, text=True)
    assert shown.returncode == 1 and shown.stdout == ""
    assert shown.stderr.strip() == (
        f"dropkit results: error: no results stored in {tmp_path / 'elsewhere' / 'default' / 'runs'}"
        " (the default results directory; pass --results-dir or set DROPKIT_RESULTS)")


def test_results_prints_a_summary_and_warns_on_a_truncated_row(tmp_path, capsys):
    store = ResultStore(tmp_path, "smoke")
    for seed, accuracy in [(0, 0.8), (1, 0.6)]:
        store.write(spec_row("fashion-mnist", seed, test_accuracy=accuracy,
                             test_worst_class=accuracy - 0.3, test_gap=0.3))
    broken = store.runs_dir / f"{'f' * 64}.json"
    broken.write_text('{"cache_key": "ff')
    with pytest.warns(UserWarning, match="ignoring unreadable result file"):
        assert main(["results", "--profile", "smoke", "--results-dir", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "  70.0  " in captured.out and "  40.0  " in captured.out  # means over the 2 seeds, in %
    assert "2 runs in" in captured.out
    # From the console, the warning is one line on stderr.
    shown = subprocess.run(dropkit_command() + ["results", "--profile", "smoke", "--results-dir",
                                                str(tmp_path)], capture_output=True, text=True)
    assert shown.returncode == 0 and "  70.0  " in shown.stdout
    lines = shown.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dropkit: warning: ignoring unreadable result")


def spec_row(dataset, seed, **metrics) -> dict:
    from dropkit.spec import RunSpec

    fields = {"model": "mlp", "protocol": "random", "density": 0.5,
              **{k: metrics.pop(k) for k in list(metrics) if not k.startswith("test_")}}
    spec = RunSpec(dataset=dataset, seed=seed, **fields)
    return {**spec.to_dict(), "cache_key": spec.cache_key, **metrics}


def test_results_never_average_different_configurations(tmp_path, capsys):
    """Issue 14, item 15: class- and group-quota runs are two rows; percents; a narrow table."""
    store = ResultStore(tmp_path, "smoke")
    for seed in (0, 1):
        for over, worst_group in (("classes", 0.379), ("groups", 0.484)):
            store.write(spec_row("spurious-fashion-mnist", seed, protocol="random+drop",
                                 method="el2n", drop_over=over, test_accuracy=0.7,
                                 test_worst_class=0.6, test_gap=0.1, test_worst_group=worst_group))
    store.write(spec_row("fashion-mnist", 0, test_accuracy=0.9, test_worst_class=0.7, test_gap=0.2))
    assert main(["results", "--profile", "smoke", "--results-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    rows = [line for line in lines if "random+drop" in line]
    assert len(rows) == 2
    assert "classes" in rows[0] and rows[0].rstrip().endswith("37.9")
    assert "groups" in rows[1] and rows[1].rstrip().endswith("48.4")
    assert "43.1" not in out and max(map(len, lines)) <= 120
    assert "fashion-mnist (1 runs; test metrics in %" in out


def dropkit_command() -> list[str]:
    script = Path(sys.executable).with_name("dropkit")
    return [str(script)] if script.exists() else [sys.executable, "-m", "dropkit.cli"]


def test_console_script_help_and_error_exit_codes(tmp_path):
    command = dropkit_command()
    shown = subprocess.run(command + ["prune", "--help"], capture_output=True, text=True)
    assert shown.returncode == 0 and "--quotas" in shown.stdout
    failed = subprocess.run(command + ["prune", "--labels", str(tmp_path / "none.npy"),
                                       "--density", "0.5", "--output", str(tmp_path / "k.npy")],
                            capture_output=True, text=True)
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines() == [
        f"dropkit prune: error: --labels {tmp_path / 'none.npy'}: no such file"
    ]
    assert not (tmp_path / "k.npy").exists()


def test_out_of_memory_is_one_line_and_writes_nothing(files, capsys, monkeypatch):
    import dropkit.cli

    def exhaust(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(dropkit.cli, "prune_indices", exhaust)
    check_error(capsys, prune(files), "dropkit prune: error: out of memory")
    assert not files["out"].exists()


def test_merge_copies_a_complete_sweep_all_or_nothing_never_replacing_a_row(tmp_path, capsys):
    """``dropkit merge``: a selection's rows join the store only when all are stored in the
    source; a differing row in the store is never replaced; identical rows count as already there."""
    from dropkit.profiles import experiment_specs

    argv = ["merge", "--profile", "smoke", "--experiment", "drop_evaluation",
            "--setup", "mlp-fashion-mnist", "--seeds", "0", "--densities", "0.3"]
    specs = experiment_specs("smoke", "drop_evaluation", setup="mlp-fashion-mnist", seeds=[0], densities=[0.3])
    assert len(specs) > 2
    source, target = ResultStore(tmp_path / "chunk", "smoke"), ResultStore(tmp_path / "shipped", "smoke")

    def row(spec, worst=0.5):
        return {**spec.to_dict(), "cache_key": spec.cache_key, "test_accuracy": 0.8, "test_worst_class": worst,
                "revision": "abc"}

    for spec in specs[:-1]:
        source.write(row(spec))
    paths = ["--from", str(tmp_path / "chunk"), "--results-dir", str(tmp_path / "shipped")]
    assert main(argv + paths) == 1                                   # incomplete: nothing copied
    assert f"1 of the {len(specs)} runs are not stored" in capsys.readouterr().err and len(target) == 0
    source.write(row(specs[-1]))
    target.write(row(specs[0]))                                      # the same row: kept, counted
    target.write(row(specs[1], worst=0.4))                           # a different row: refused
    assert main(argv + paths) == 1
    assert "a stored row is never replaced" in capsys.readouterr().err and len(target) == 2
    assert target.read(specs[1].cache_key)["test_worst_class"] == 0.4
    target.write(row(specs[1]))
    assert main(argv + paths) == 0
    assert f"copied {len(specs) - 2}, 2 already stored identical" in capsys.readouterr().out
    assert {key: target.read(key) for key in target.keys()} == {key: source.read(key) for key in source.keys()}
    assert main(argv + ["--from", str(tmp_path / "shipped"), "--results-dir", str(tmp_path / "shipped")]) == 1
    assert "is the target store itself" in capsys.readouterr().err


def test_slurm_jobs_take_the_profiles_threads_not_the_login_nodes_cpu_count(monkeypatch):
    import argparse

    from dropkit.cli import _parallelism
    from dropkit.profiles import get_profile

    monkeypatch.setattr("os.cpu_count", lambda: 2)
    paper = get_profile("paper")
    assert paper.threads == 4

    def args(**given):
        return argparse.Namespace(**{"threads": None, "workers": None, "executor": "local", **given})

    assert _parallelism(args(), paper) == (2, 1)                       # local: this machine's 2 cores
    assert _parallelism(args(executor="slurm"), paper)[0] == 4         # a job: the profile's 4
    assert _parallelism(args(executor="slurm", threads=8), paper)[0] == 8
