"""The results of one book chapter, in one call: what every result notebook (02-07) does first.

:func:`chapter_results` checks the notebook's papermill parameters, builds the experiment set's
run specs setting by setting (:func:`dropkit.profiles.experiment_settings`), runs the missing ones
(:func:`dropkit.sweep.sweep`; stored rows are read, not recomputed), and returns the rows as
one labelled table, each row naming its setting (the ``setting`` column), with a few lines of
provenance to print. Notebooks keep their parameters,
figures and captions; this module keeps the plumbing out of them.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from numbers import Real
from typing import Any

import pandas as pd

from dropkit.profiles import Profile, check_profile, experiment_settings, get_profile


@dataclass(frozen=True)
class ChapterResults:
    """What :func:`chapter_results` returns.

    Attributes:
        frame: one row per run of each setting of the chapter (:func:`label_settings`: setting
            by setting, in spec order), with the ``setting`` column (the profile's setup name,
            :func:`dropkit.profiles.setting_name`) and the ``label`` and ``color`` columns of
            :func:`dropkit.curves.labelled`.
        specs: the chapter's :class:`dropkit.spec.RunSpec` s (each run once).
        profile: the :class:`dropkit.profiles.Profile` they come from.
        lines: what happened, in sentences (runs read vs computed, provenance, notes the runs
            raised as warnings, each once); :meth:`print_lines` prints them.
    """

    frame: pd.DataFrame
    specs: list
    profile: Profile
    lines: tuple[str, ...]

    def print_lines(self) -> None:
        """Print :attr:`lines`, one per line."""
        for line in self.lines:
            print(line)


def label_settings(frame: pd.DataFrame, by_setting) -> pd.DataFrame:
    """The rows of ``frame`` (results with a ``cache_key`` column) setting by setting, with the
    ``setting`` column: ``by_setting`` maps a setting name to its run specs
    (:func:`dropkit.profiles.experiment_settings`). A run two settings share appears once under
    each; a row of no setting is left out. Index: 0..n-1."""
    if frame.empty:
        return frame.assign(setting=pd.Series(dtype=str))
    parts = []
    for name, specs in by_setting.items():
        keys = {spec.cache_key for spec in specs}
        parts.append(frame[frame["cache_key"].isin(keys)].assign(setting=name))
    if not parts:
        return frame.iloc[:0].assign(setting=pd.Series(dtype=str))
    return pd.concat(parts, ignore_index=True)


def check_reference(reference) -> float:
    """The "what we see" reference density: a number in (0, 1], else ``ValueError``."""
    if isinstance(reference, bool) or not isinstance(reference, Real) or not 0 < reference <= 1:
        raise ValueError(f"reference={reference!r} must be a density in (0, 1]")
    return float(reference)


def _optional_text(name: str, value) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ValueError(f"{name}={value!r} must be None (the profile's value) or a non-empty string")


def chapter_results(profile: str | Profile, experiment: str, *, dataset: str | None = None,
                    model: str | None = None, densities=None, seeds=None,
                    device: str | None = None, results_dir: str = "results",
                    workers: int | None = None, data_root: str | None = None,
                    pretrained_path: str | None = None, progress: bool = False,
                    **overrides: Any) -> ChapterResults:
    """Run (or read) every run of ``experiment`` at ``profile`` and return them as a table.

    Args:
        profile: a :data:`dropkit.profiles.PROFILE_NAMES` name, or a :class:`Profile` (e.g. a
            named one with fewer strategies, through ``dataclasses.replace``).
        experiment: an experiment set (:data:`dropkit.profiles.EXPERIMENT_SETS`).
        dataset, model, densities, seeds, device: None = the profile's; else replace them
            (checked by :func:`dropkit.profiles.experiment_settings`).
        results_dir: root of the result store; rows live in ``<results_dir>/<profile>/runs``.
        workers: local worker processes (None: the profile's, limited by the CPU count and the
            profile's threads per worker).
        data_root: where the datasets are (None: their default locations).
        pretrained_path: a local ImageNet weights file for setups that fine-tune (Waterbirds);
            must exist when given.
        progress: show the sweep's progress bar.
        overrides: other :class:`dropkit.spec.RunSpec` fields for every run.

    Returns:
        :class:`ChapterResults`. Raises ``ValueError`` for a bad parameter,
        ``FileNotFoundError`` for a missing ``pretrained_path``, ``RuntimeError`` when a run left
        no row, and :class:`dropkit.sweep.SweepError` when a run failed (finished rows stay
        stored, so calling again resumes).
    """
    from dropkit import claims, curves
    from dropkit.sweep import results_frame, sweep
    from dropkit.store import ResultStore

    if not isinstance(profile, Profile):
        check_profile(profile)
    for name, value in (("dataset", dataset), ("model", model), ("device", device),
                        ("data_root", data_root)):
        _optional_text(name, value)
    if not isinstance(results_dir, (str, os.PathLike)) or not str(results_dir):
        raise ValueError(f"results_dir={results_dir!r} must be a non-empty path")
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
        raise ValueError(f"workers={workers!r} must be None or a positive integer")
    if pretrained_path is not None:
        if not isinstance(pretrained_path, (str, os.PathLike)) or not os.path.isfile(pretrained_path):
            raise FileNotFoundError(f"pretrained_path={pretrained_path!r} is not a file")
        overrides["pretrained_path"] = str(pretrained_path)
    settings = profile if isinstance(profile, Profile) else get_profile(profile)
    by_setting = experiment_settings(settings, experiment, dataset=dataset, model=model,
                                     densities=densities, seeds=seeds, device=device, **overrides)
    unique: dict[str, Any] = {}
    for runs in by_setting.values():
        for spec in runs:
            unique.setdefault(spec.cache_key, spec)
    specs = list(unique.values())
    store = ResultStore(results_dir, settings.name)
    workers = workers or max(1, min(settings.workers, (os.cpu_count() or 1) // settings.threads))
    with warnings.catch_warnings(record=True) as caught:  # reported once each, in ``lines``
        warnings.simplefilter("always")  # (a row or score cache ignored is named there by path)
        stored_before = len(set(store.keys()) & {spec.cache_key for spec in specs})
        report = sweep(specs, store, workers=workers, threads=settings.threads,
                       data_root=data_root, progress=progress)
    frame = results_frame(specs, store)
    if len(frame) != len(specs):
        raise RuntimeError(f"{len(specs) - len(frame)} of {len(specs)} runs have no stored row "
                           f"in {store.path}")
    frame = curves.labelled(label_settings(frame, by_setting))
    found = f", {report.found} computed meanwhile by another process" if report.found else ""
    lines = [f"{len(specs)} runs: {stored_before} read from {store.path}, {report.ran} computed "
             f"now{found} ({report.seconds:.0f} s).", claims.provenance_sentence(frame)]
    lines += [f"Note from the runs: {note}" for note in sorted({str(w.message) for w in caught})]
    return ChapterResults(frame, specs, settings, tuple(lines))


# --------------------------------------------------------------------------- the setting, once per chapter

_SMOKE = ("Smoke profile: a {n}-sample subset and 2 epochs, to check that the chapter runs; its "
          "numbers are not meant to be read.")
_CIFAR_FAST = ("The fast profile: the paper's CIFAR-10/100 runs with a small residual network (resnet9, "
               "16 epochs, batch 512) instead of VGG-16/19 for 160 epochs; its CIFAR accuracy was not "
               "measured when the profile was written.")
#: How each experiment set's runs differ from the paper's, per profile (one sentence or two).
PAPER_DIFFERENCES: dict[str, dict[str, str]] = {
    "bias_benchmark": {
        "smoke": _SMOKE.format(n=3000),
        "default": "The paper trains VGG-16/19 and ResNet-18/50 on CIFAR-10/100, TinyImageNet and ImageNet "
                   "for 90-200 epochs on GPUs; here the real Fashion-MNIST with the smaller networks and "
                   "schedules of the settings below.",
        "paper": "The paper's model-dataset pairs and schedules (Appendix A, Table 1).",
        "fast": _CIFAR_FAST,
    },
    "drop_evaluation": {
        "smoke": _SMOKE.format(n=3000),
        "default": "The paper uses VGG-16/19 and ResNet-18/50 on CIFAR-10/100, TinyImageNet and ImageNet "
                   "trained for 90-200 epochs on GPUs; here the real Fashion-MNIST with the smaller networks "
                   "and schedules of the settings below.",
        "paper": "The paper's model-dataset pairs and schedules (Appendix A, Table 1).",
        "fast": _CIFAR_FAST,
    },
    "cdbw": {
        "smoke": _SMOKE.format(n=3000),
        "default": "The paper uses VGG-19 on CIFAR-100 trained for 160 epochs on GPUs; here the real "
                   "Fashion-MNIST (10 classes) and a small MLP trained on a CPU.",
        "paper": "The paper's setting: VGG-19 on CIFAR-100 (Appendix A, Table 1).",
        "fast": "The fast profile: CIFAR-100 with a small residual network (resnet9, 16 epochs, batch 512) "
                "instead of VGG-19 for 160 epochs.",
    },
    "imbalanced": {
        "smoke": _SMOKE.format(n=3000),
        "default": "The paper uses ResNet-18 on long-tailed TinyImageNet (200 classes) trained for 200 epochs "
                   "on GPUs; here long-tailed versions of the real Fashion-MNIST (10 classes) and a small MLP "
                   "trained on a CPU.",
        "paper": "The paper's setting: ResNet-18 on long-tailed TinyImageNet (Appendix A, Table 1).",
        "fast": "The fast profile: long-tailed CIFAR-10 with a small residual network (resnet9, 16 epochs) "
                "instead of ResNet-18 on long-tailed TinyImageNet.",
    },
    "waterbirds": {
        "smoke": _SMOKE.format(n=2000),
        "default": "The paper uses Waterbirds with an ImageNet-pretrained ResNet-50 fine-tuned for 300 epochs "
                   "on GPUs; here the spurious-cue Fashion-MNIST variant (T-shirt/top vs Shirt, background cue "
                   "aligned with the label for 95% of the training images, independent in test) and a small "
                   "MLP trained from scratch on a CPU.",
        "paper": "The paper's setting: Waterbirds, ImageNet-pretrained ResNet-50 (Appendix A, Table 1).",
        "fast": "The fast profile keeps the paper's setting: Waterbirds, ImageNet-pretrained ResNet-50 "
                "(Appendix A, Table 1).",
    },
    "pretraining_ablation": {
        "smoke": _SMOKE.format(n=3000),
        "default": "The paper uses VGG-19 on CIFAR-100 (160 epochs) and ResNet-18 on TinyImageNet (200 epochs) "
                   "on GPUs with query models trained up to 32 epochs; here the real Fashion-MNIST and a small "
                   "MLP trained on a CPU.",
        "paper": "The paper's settings: VGG-19 on CIFAR-100 and ResNet-18 on TinyImageNet (Appendix A, Table 1).",
        "fast": "The fast profile: CIFAR-100 with a small residual network (resnet9, 16 epochs, batch 512) "
                "instead of VGG-19 and ResNet-18.",
    },
}


def setting_paragraph(results: ChapterResults, experiment: str, *, dataset: str | None = None,
                      model: str | None = None, notes=()) -> str:
    """The chapter's setting in Markdown, stated once for all its figures: each setting's runs
    (:func:`dropkit.tables.setting_descriptions`: model, training-set size, epochs and LR
    schedule, augmentation, device, seeds, densities, query models), as one sentence for a
    single setting and one bullet per setting otherwise; how they differ from the paper's
    (:data:`PAPER_DIFFERENCES`; ``dataset``/``model`` overrides are named), any ``notes`` of the
    chapter, then :attr:`ChapterResults.lines` (where the rows come from)."""
    from dropkit.tables import setting_descriptions

    if experiment not in PAPER_DIFFERENCES:
        raise ValueError(f"experiment={experiment!r} has no setting text; known: {list(PAPER_DIFFERENCES)}")
    profile = results.profile.name
    difference = PAPER_DIFFERENCES[experiment].get(profile, f"Profile {profile}.")
    if profile != "paper" and (model is not None or dataset is not None):
        difference += f" Overridden here: dataset={dataset}, model={model}."
    descriptions = setting_descriptions(results.frame)
    if len(descriptions) == 1:
        (title, text), = descriptions
        parts = [f"**Setting** (profile `{profile}`, every figure and table of this chapter): "
                 f"{title}: {text}. {difference}"]
    else:
        parts = [f"**Settings** (profile `{profile}`): {len(descriptions)} settings, each drawn in its own "
                 f"rows of panels (titled with the setting) and judged on its own in the tables and "
                 f"verdicts. {difference}",
                 "\n".join(f"- **{title}**: {text}." for title, text in descriptions)]
    return "\n\n".join([*parts, *notes, *(f"*{line}*" for line in results.lines)])


#: Largest ``n_points`` of the theory chapter: its datasets are held in memory at once.
MAX_THEORY_POINTS = 10_000_000


def check_theory_parameters(*, dataset, model, densities, figure3_density, seeds, n_datasets,
                            n_points, n_draws, seed, device, results_dir) -> None:
    """The theory chapter's papermill parameters, else ``ValueError`` naming the bad one."""
    if dataset != "gaussian-mixture":
        raise ValueError(f"dataset={dataset!r}: this chapter only supports 'gaussian-mixture'")
    if model != "threshold":
        raise ValueError(f"model={model!r}: this chapter only supports 'threshold' (the rule 1{{x > t}})")
    if not isinstance(densities, (list, tuple)) or not densities or not all(
            isinstance(d, Real) and not isinstance(d, bool) and 0 < d <= 1 for d in densities):
        raise ValueError(f"densities={densities!r} must be a non-empty list of numbers in (0, 1]")
    if isinstance(figure3_density, bool) or not isinstance(figure3_density, Real) or not 0 < figure3_density <= 1:
        raise ValueError(f"figure3_density={figure3_density!r} must be a number in (0, 1]")
    if not isinstance(seeds, (list, tuple)) or not seeds or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise ValueError(f"seeds={seeds!r} must be a non-empty list of non-negative integers")
    for name, value, minimum in (("n_datasets", n_datasets, 1), ("n_points", n_points, 2), ("n_draws", n_draws, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ValueError(f"{name}={value!r} must be an integer >= {minimum}")
    if n_points > MAX_THEORY_POINTS:
        raise ValueError(f"n_points={n_points!r} must be at most {MAX_THEORY_POINTS} (the datasets are held in memory)")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative integer")
    _optional_text("device", device)
    if device is None:
        raise ValueError("device=None: give a device name such as 'cpu' (unused: numpy only)")
    from dropkit.spec import check_device

    check_device(device)
    if not isinstance(results_dir, str) or not results_dir:
        raise ValueError(f"results_dir={results_dir!r} must be a non-empty path (unused: nothing is written)")
