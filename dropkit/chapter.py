"""The results of one book chapter, in one call: what every result notebook (02-07) does first.

:func:`chapter_results` checks the notebook's papermill parameters, builds the experiment set's
run specs (:func:`dropkit.profiles.experiment_specs`), runs the missing ones
(:func:`dropkit.sweep.sweep`; stored rows are read, not recomputed), and returns the rows as
one labelled table with a few lines of provenance to print. Notebooks keep their parameters,
figures and captions; this module keeps the plumbing out of them.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from numbers import Real
from typing import Any

import pandas as pd

from dropkit.profiles import Profile, check_profile, experiment_specs, get_profile


@dataclass(frozen=True)
class ChapterResults:
    """What :func:`chapter_results` returns.

    frame: one row per run spec of the chapter, in spec order, with the ``label`` and ``color``
        columns of :func:`dropkit.plots.labelled`.
    specs: the chapter's :class:`dropkit.spec.RunSpec` s.
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
            (checked by :func:`dropkit.profiles.experiment_specs`).
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
    from dropkit import claims, plots
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
    specs = experiment_specs(settings, experiment, dataset=dataset, model=model,
                             densities=densities, seeds=seeds, device=device, **overrides)
    store = ResultStore(results_dir, settings.name)
    stored_before = len(set(store.keys()) & {spec.cache_key for spec in specs})
    workers = workers or max(1, min(settings.workers, (os.cpu_count() or 1) // settings.threads))
    with warnings.catch_warnings(record=True) as caught:  # reported once each, in ``lines``
        warnings.simplefilter("always")
        report = sweep(specs, store, workers=workers, threads=settings.threads,
                       data_root=data_root, progress=progress)
    frame = results_frame(specs, store)
    if len(frame) != len(specs):
        raise RuntimeError(f"{len(specs) - len(frame)} of {len(specs)} runs have no stored row "
                           f"in {store.path}")
    frame = plots.labelled(frame)
    found = f", {report.found} computed meanwhile by another process" if report.found else ""
    lines = [f"{len(specs)} runs: {stored_before} read from {store.path}, {report.ran} computed "
             f"now{found} ({report.seconds:.0f} s).", claims.provenance_sentence(frame)]
    lines += [f"Note from the runs: {note}" for note in sorted({str(w.message) for w in caught})]
    return ChapterResults(frame, specs, settings, tuple(lines))
