"""Named experiment sizes: ``smoke`` (CI, about a minute per notebook), ``default`` (real
Fashion-MNIST on a 2-core CPU), ``paper`` (the paper's Table 1 on GPUs) and ``fast`` (the paper's
CIFAR experiments with a small residual network and a short schedule, on one GPU).

Notebooks take ``profile`` as a papermill parameter and validate it here first, so a typo fails
with a clear message instead of silently running some other configuration.

A :class:`Profile` holds one or more :class:`TrainingSetup` (a model-dataset pair with its training
hyperparameters, i.e. a row of the paper's Table 1), the seeds and densities, and which setups each
experiment set (book chapter) uses. :func:`experiment_specs` turns (profile, experiment set,
overrides) into the list of :class:`dropkit.spec.RunSpec` that chapter needs;
:func:`experiment_settings` gives the same runs by *setting* (one setup of the set, named by
:func:`setting_name`), so the book can draw and judge each setting on its own:

==========================  ==========================  ============================================
experiment set              chapter                     runs per setup, seed and density
==========================  ==========================  ============================================
``bias_benchmark``          02 (Figures 1, 2, 10, 13,   ``random``; ``strategy`` for every method of
                            14)                         ``profile.methods``; + full dataset
``drop_evaluation``         03 (Figures 5, 6, 11, 12)   ``random``, ``random+drop``; for each of the
                                                        setup's ``strategies``: ``strategy``,
                                                        ``random+strategyq``, ``strategy+drop``;
                                                        + full dataset
``cdbw``                    04 (Figure 7)               ``random+drop``, EL2N ``strategy``,
                                                        ``strategy+drop``, EL2N + CDB-W final model,
                                                        CDB-W query model + EL2N; + full dataset with
                                                        and without CDB-W; query models train at
                                                        least :data:`CDBW_MIN_QUERY_EPOCHS` epochs;
                                                        the three CDB-W runs again with the
                                                        authors' weight rule
                                                        (:data:`CDBW_COMPARED_RULE`)
``imbalanced``              05 (Figure 8)               for each imbalance factor: ``random+drop``
                                                        with quota rule ``"paper"`` and with rule
                                                        ``"counts"``, EL2N ``strategy``; + full
                                                        dataset with and without CDB-W
``waterbirds``              06 (Figure 9)               ``random``, ``random+drop``, EL2N ``strategy``
                                                        and ``strategy+drop``, both DRoP protocols
                                                        also with quotas over groups
                                                        (``drop_over="groups"``); + full dataset with
                                                        and without CDB-W (group data)
``pretraining_ablation``    07 (Figure 15)              ``random+drop`` for every query length of
                                                        ``query_epoch_grid`` at
                                                        ``ablation_densities``; + full dataset
==========================  ==========================  ============================================
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

PROFILE_NAMES: tuple[str, ...] = ("smoke", "default", "paper", "fast")

#: Experiment set name -> the book chapter (notebook) that uses it.
EXPERIMENT_SETS: dict[str, str] = {
    "bias_benchmark": "02_bias_benchmark",
    "drop_evaluation": "03_drop_evaluation",
    "cdbw": "04_cdbw",
    "imbalanced": "05_imbalanced",
    "waterbirds": "06_waterbirds",
    "pretraining_ablation": "07_pretraining_ablation",
}

#: Shortest query training of the ``cdbw`` experiment set. CDB-W weighs an epoch's loss by the
#: previous epoch's validation recalls, so its first epoch is unweighted: a one-epoch CDB-W query
#: model *is* the plain one, and CDB-W+EL2N would repeat EL2N. The set's query models (all of its
#: protocols alike, so the comparison stays fair) train ``max(2, setup.query_epochs)`` epochs.
CDBW_MIN_QUERY_EPOCHS = 2
#: The CDB-W weight rule the ``cdbw`` set runs beside the profile's own (``Profile.cdbw_weights``):
#: the authors' public code (``dropkit.spec.CDBW_WEIGHTS``), so chapter 04 can compare the two on
#: the same seeds (CDB-W on the full dataset, EL2N+CDB-W, CDB-W+EL2N).
CDBW_COMPARED_RULE = "authors"

#: The pruning methods of the bias benchmark (Section 2), besides Random.
BENCHMARK_METHODS: tuple[str, ...] = ("el2n", "grand", "forgetting", "dynamic_uncertainty", "coreset")


def _densities(value, name: str = "densities") -> tuple[float, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) == 0:
        raise ValueError(f"{name}={value!r} must be a non-empty list of numbers in (0, 1]")
    out = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, numbers.Real) or not 0 < float(item) <= 1:
            raise ValueError(f"{name}={value!r} must be a non-empty list of numbers in (0, 1]")
        out.append(float(item))
    return tuple(out)


def _seeds(value) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) == 0:
        raise ValueError(f"seeds={value!r} must be a non-empty list of non-negative integers")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, numbers.Integral) or item < 0:
            raise ValueError(f"seeds={value!r} must be a non-empty list of non-negative integers")
    return tuple(int(item) for item in value)


def check_profile(name: str) -> str:
    """Return ``name`` if it is a known profile, else raise ``ValueError`` listing the valid ones."""
    if not isinstance(name, str) or name not in PROFILE_NAMES:
        raise ValueError(
            f"profile={name!r} is not a known profile; choose one of {', '.join(PROFILE_NAMES)}"
        )
    return name


@dataclass(frozen=True)
class TrainingSetup:
    """One model-dataset pair and its training hyperparameters (a row of the paper's Table 1).

    epochs, drop_epochs (0-based epochs where the LR is multiplied by 0.2), batch_size, lr,
    weight_decay: the final model's SGD schedule (momentum 0.9). query_epochs: length of the
    short EL2N/GraNd/DRoP query training (paper: 10% of ``epochs``). augment: shifts of at most
    ``max_shift`` px + horizontal flips (if ``hflip``) on the final model. train_subset: stratified training subset size (None = all).
    strategies: the score methods DRoP is evaluated with (Figure 5). methods: the bias
    benchmark's score methods on this setup (None: the profile's ``methods``). densities: the
    densities of chapters 02-03 on this setup (None: the profile's ``densities``). needs_pretrained: the
    setup fine-tunes ImageNet weights, given as ``pretrained_path`` (Waterbirds). bf16,
    channels_last: the GPU path's speed options for every training of the setup (``fast``).
    seeds: the setting's pre-registered seeds, fixed before their rows were computed (None: the
    profile's ``seeds``; :meth:`Profile.seeds_for` says which of them a chapter reads now).
    """

    name: str
    dataset: str
    model: str
    epochs: int
    drop_epochs: tuple[int, ...]
    batch_size: int
    lr: float
    weight_decay: float
    query_epochs: int
    augment: bool = True
    max_shift: int = 4
    hflip: bool = True
    train_subset: int | None = None
    dataset_options: tuple[tuple[str, Any], ...] = ()
    strategies: tuple[str, ...] = ("el2n",)
    methods: tuple[str, ...] | None = None
    densities: tuple[float, ...] | None = None
    needs_pretrained: bool = False
    bf16: bool = False
    channels_last: bool = False
    seeds: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Profile:
    """A named experiment size.

    setups: the profile's :class:`TrainingSetup` s; experiment_setups: experiment set name ->
    names of the setups it runs on. seeds, densities (main chapters 02-03) and
    secondary_densities (chapters 04-06); query_seeds: query trainings averaged for EL2N/GraNd and
    DRoP recalls (paper: 5). methods: the bias benchmark's score methods. imbalance_factors
    (chapter 05), query_epoch_grid and ablation_densities (chapter 07). device: torch device of
    every run. workers x threads: local processes and torch threads each. slurm_partition,
    slurm_time_min, slurm_gpus: defaults of ``executor="slurm"``.

    Protocol choices (RunSpec fields set on the runs they apply to): recall_query (Strategy+DRoP's
    recalls from DRoP's short query models, ``"short"``, the paper, or from the strategy's own,
    ``"method"``), cdbw_weights (``"paper"``: (1 - r_k)/Z, ``"floored"`` or ``"authors"``; the
    ``cdbw`` set also runs :data:`CDBW_COMPARED_RULE`), du_window (Dynamic
    Uncertainty's window J, He et al.: 10). experiment_seeds: ``(experiment set, setup name,
    seeds)`` entries for the settings whose rows are computed for fewer seeds than the setup
    registers (:attr:`TrainingSetup.seeds`): what the chapter reads until the rest are computed
    (:meth:`registered_seeds` is what it will read).
    """

    name: str
    description: str
    setups: tuple[TrainingSetup, ...]
    experiment_setups: tuple[tuple[str, tuple[str, ...]], ...]
    seeds: tuple[int, ...]
    densities: tuple[float, ...]
    secondary_densities: tuple[float, ...]
    query_seeds: int
    methods: tuple[str, ...]
    imbalance_factors: tuple[float, ...]
    query_epoch_grid: tuple[int | float, ...]
    ablation_densities: tuple[float, ...]
    device: str = "cpu"
    workers: int = 1
    threads: int = 1
    slurm_partition: str | None = None
    slurm_time_min: int = 60
    slurm_gpus: int = 0
    recall_query: str = "short"
    cdbw_weights: str = "paper"
    du_window: int = 10
    experiment_seeds: tuple[tuple[str, str, tuple[int, ...]], ...] = ()

    def __post_init__(self):
        names = {s.name for s in self.setups}
        for entry in self.experiment_seeds:
            if len(entry) != 3:
                raise ValueError(f"experiment_seeds entry {entry!r} must be (experiment set, setup name, seeds)")
            experiment, setup, seeds = entry
            check_experiment(experiment)
            if setup not in names:
                raise ValueError(f"experiment_seeds entry {entry!r}: no setup {setup!r} in profile {self.name!r}")
            if not set(_seeds(seeds)) <= set(self.registered_seeds(setup)):
                raise ValueError(f"experiment_seeds entry {entry!r}: seeds outside the setup's registered "
                                 f"{self.registered_seeds(setup)}")

    def registered_seeds(self, setup: str) -> tuple[int, ...]:
        """The pre-registered seeds of setup ``setup``: its own ``seeds``, else the profile's."""
        own = self.setup(setup).seeds
        return self.seeds if own is None else own

    def seeds_for(self, experiment: str, setup: str | None = None) -> tuple[int, ...]:
        """The seeds experiment set ``experiment`` reads on setup ``setup``: the entry of
        ``experiment_seeds`` for the pair, else the setup's registered seeds. Without ``setup``:
        the seeds of every setup of the experiment set, if they agree (else ``ValueError``)."""
        check_experiment(experiment)
        if setup is None:
            found = {self.seeds_for(experiment, s.name) for s in self.setups_for(experiment)} or {self.seeds}
            if len(found) > 1:
                raise ValueError(f"experiment {experiment!r} reads different seeds on its setups in profile "
                                 f"{self.name!r}; name the setup")
            return found.pop()
        pending = {(e, s): seeds for e, s, seeds in self.experiment_seeds}
        return tuple(pending.get((experiment, setup), self.registered_seeds(setup)))

    def setup(self, name: str) -> TrainingSetup:
        """The setup called ``name``."""
        for setup in self.setups:
            if setup.name == name:
                return setup
        raise ValueError(
            f"setup={name!r} is not in profile {self.name!r}; "
            f"choose one of {', '.join(s.name for s in self.setups)}"
        )

    def setups_for(self, experiment: str) -> tuple[TrainingSetup, ...]:
        """The setups experiment set ``experiment`` runs on in this profile."""
        check_experiment(experiment)
        names = dict(self.experiment_setups).get(experiment, ())
        return tuple(self.setup(name) for name in names)


def check_experiment(name: str) -> str:
    """Return ``name`` if it is a known experiment set, else raise ``ValueError`` listing them."""
    if not isinstance(name, str) or name not in EXPERIMENT_SETS:
        raise ValueError(
            f"experiment={name!r} is not a known experiment set; "
            f"choose one of {', '.join(EXPERIMENT_SETS)}"
        )
    return name


_TENTHS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
_ODD_TENTHS = (0.1, 0.3, 0.5, 0.7, 0.9)

_FMNIST_MLP_SMOKE = TrainingSetup(
    name="mlp-fashion-mnist", dataset="fashion-mnist", model="mlp", epochs=2, drop_epochs=(),
    batch_size=128, lr=0.05, weight_decay=5e-4, query_epochs=1, augment=False, train_subset=3000,
)
_SPURIOUS_MLP_SMOKE = dataclasses.replace(
    _FMNIST_MLP_SMOKE, name="mlp-spurious-fashion-mnist", dataset="spurious-fashion-mnist",
    train_subset=2000,
)
#: The default profile's pre-registered seeds (issue 28, ``results/default/README.md``), fixed
#: before any row of a new seed was computed: 20 for every MLP cell a scorecard claim reads, 10 for
#: the CNN's.
MLP_SEEDS: tuple[int, ...] = tuple(range(20))
CNN_SEEDS: tuple[int, ...] = tuple(range(10))
# Default: one MLP per run on the real Fashion-MNIST (60k), 10 epochs with the paper's
# 50%/75% LR drops; query models trained 1 epoch (10% of the final length, as in the paper).
_FMNIST_MLP = TrainingSetup(
    name="mlp-fashion-mnist", dataset="fashion-mnist", model="mlp", epochs=10, drop_epochs=(5, 8),
    batch_size=256, lr=0.05, weight_decay=5e-4, query_epochs=1, augment=False,
    strategies=("el2n", "forgetting"), seeds=MLP_SEEDS,
)
_SPURIOUS_MLP = dataclasses.replace(
    _FMNIST_MLP, name="mlp-spurious-fashion-mnist", dataset="spurious-fashion-mnist",
    strategies=("el2n",),
)
CNN_EPOCHS = 15
CNN_DROP_EPOCHS = (8, 12)     # x0.2 after 8 and 12 of 15 epochs (~50% and 80%, as the MLP's 5 and 8 of 10)
CNN_QUERY_EPOCHS = 1.5        # 10% of the final training, as in the paper
#: The CNN tier's densities: four levels, 0.1-0.7 (the 2-hour CPU budget of issue 16 leaves out 0.9).
CNN_DENSITIES = (0.1, 0.3, 0.5, 0.7)
# The convolutional setting of chapters 02-03 (issue 16): four conv-BN-ReLU blocks (``cnn``: 16,
# 32, 64, 64 channels, global average pooling), Kaiming normal initialisation, SGD with momentum
# 0.9, batch 128, lr 0.1 with x0.2 drops, random shifts of at most 2 px (of 28) and no horizontal
# flips on the final model (Fashion-MNIST's shoes all face one way: with flips the same network
# reached 91.9%, mean of 5 seeds), NHWC memory format (an isolated step measured about twice NCHW's
# throughput; inside dropkit's loop benchmarks/train_throughput.py measured 1.00x, with the same
# numbers). Full-data test accuracy of the shipped rows: results/default/README.md.
# Its bias benchmark runs the methods the issue names (EL2N, Forgetting) besides Random; DRoP is
# evaluated with EL2N.
_FMNIST_CNN = TrainingSetup(
    name="cnn-fashion-mnist", dataset="fashion-mnist", model="cnn", epochs=CNN_EPOCHS,
    drop_epochs=CNN_DROP_EPOCHS, batch_size=128, lr=0.1, weight_decay=5e-4, query_epochs=CNN_QUERY_EPOCHS,
    augment=True, max_shift=2, hflip=False, strategies=("el2n",), methods=("el2n", "forgetting"), channels_last=True,
    densities=CNN_DENSITIES, seeds=CNN_SEEDS,
)
_FMNIST_CNN_SMOKE = dataclasses.replace(
    _FMNIST_CNN, epochs=2, drop_epochs=(), query_epochs=1, train_subset=3000, densities=None, seeds=None,
)
_ALL_CHAPTERS = tuple(EXPERIMENT_SETS)
#: The chapters with one row per setting (MLP and CNN): the bias benchmark and DRoP's evaluation.
_PER_SETTING_CHAPTERS = ("bias_benchmark", "drop_evaluation")


def _cpu_experiments(main: str, group: str, conv: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((e, (group,) if e == "waterbirds" else (main, conv) if e in _PER_SETTING_CHAPTERS
                  else (main,)) for e in _ALL_CHAPTERS)


_PAPER_WATERBIRDS = TrainingSetup(
    "resnet50-waterbirds", "waterbirds", "resnet50", 300, (), 128, 1e-4, 1e-4, query_epochs=30,
    augment=False, strategies=("el2n",), needs_pretrained=True,
)
# Fast: the fast-CIFAR-training recipe's small residual network (``resnet9``), batch 512, 16 epochs
# with the paper's x0.2 drops at 50%/75%, query models 2 epochs (~10%), bf16 autocast and
# channels_last (the GPU path's options, which benchmarks/gpu.py measured; every CUDA run also
# replays its steps as CUDA graphs, see dropkit.runner). Its accuracy on real
# CIFAR has not been measured here (no CIFAR offline); benchmarks/gpu.py measures its throughput
# and projects the sweep's GPU-hours.
_FAST_CIFAR10 = TrainingSetup(
    "resnet9-cifar10", "cifar10", "resnet9", 16, (8, 12), 512, 0.2, 5e-4, query_epochs=2,
    strategies=("el2n",), bf16=True, channels_last=True,
)
_FAST_CIFAR100 = dataclasses.replace(
    _FAST_CIFAR10, name="resnet9-cifar100", dataset="cifar100", strategies=("grand", "forgetting"),
)

PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        description="CI: a 3000-sample stratified subset of Fashion-MNIST, 2 epochs, 1 seed, "
        "2 densities; every notebook in about a minute on a CPU",
        setups=(_FMNIST_MLP_SMOKE, _SPURIOUS_MLP_SMOKE, _FMNIST_CNN_SMOKE),
        experiment_setups=_cpu_experiments(_FMNIST_MLP_SMOKE.name, _SPURIOUS_MLP_SMOKE.name,
                                           _FMNIST_CNN_SMOKE.name),
        seeds=(0,),
        densities=(0.3, 0.7),
        secondary_densities=(0.3, 0.7),
        query_seeds=2,
        methods=BENCHMARK_METHODS,
        imbalance_factors=(5.0,),
        query_epoch_grid=(0.5, 1, 2),
        ablation_densities=(0.5,),
        device="cpu",
        workers=1,
        threads=1,
    ),
    "default": Profile(
        name="default",
        description="the embedded default: real Fashion-MNIST (60k train), an MLP trained 10 "
        "epochs per run, densities 0.1, 0.3, ..., 0.9 (the five levels of the paper's "
        "Figure 13); chapters 02-03 also on a small CNN (15 epochs, augmented, densities "
        "0.1-0.7); seeds pre-registered per setting (MLP 20, CNN 10), every chapter at all of "
        "them; on 2 CPU cores as 2 workers x 1 thread. "
        "Runs and measured walls in results/default/README.md; the rows ship in results/default",
        setups=(_FMNIST_MLP, _SPURIOUS_MLP, _FMNIST_CNN),
        experiment_setups=_cpu_experiments(_FMNIST_MLP.name, _SPURIOUS_MLP.name, _FMNIST_CNN.name),
        seeds=(0, 1, 2, 3, 4),
        densities=_ODD_TENTHS,
        secondary_densities=_ODD_TENTHS,
        query_seeds=5,
        methods=BENCHMARK_METHODS,
        imbalance_factors=(2.0, 5.0, 20.0),
        query_epoch_grid=(0.1, 0.3, 1, 2, 5),
        ablation_densities=(0.4, 0.5, 0.8),
        device="cpu",
        workers=2,
        threads=1,
        # 10-epoch query runs: Dynamic Uncertainty's window J = 5 gives 6 windows (J = 10: one)
        du_window=5,
    ),
    "paper": Profile(
        name="paper",
        description="the paper's Table 1 (Appendix A): VGG-16/CIFAR-10, VGG-19/CIFAR-100, "
        "ResNet-18/TinyImageNet, ResNet-50/ImageNet, ResNet-50/Waterbirds; 3 seeds, densities "
        "0.1-0.9, 5 query seeds; needs GPUs and the datasets on disk",
        setups=(
            TrainingSetup("vgg16-cifar10", "cifar10", "vgg16", 160, (80, 120), 128, 0.1, 1e-4,
                          query_epochs=16, strategies=("el2n",)),
            TrainingSetup("vgg19-cifar100", "cifar100", "vgg19", 160, (80, 120), 128, 0.1, 5e-4,
                          query_epochs=16, strategies=("grand", "forgetting")),
            TrainingSetup("resnet18-tinyimagenet", "tinyimagenet", "resnet18", 200, (100, 150),
                          256, 0.2, 1e-4, query_epochs=20, strategies=("grand", "forgetting")),
            TrainingSetup("resnet50-imagenet", "imagenet", "resnet50", 90, (30, 60), 512, 0.2,
                          1e-4, query_epochs=9, strategies=("el2n",)),
            _PAPER_WATERBIRDS,
        ),
        experiment_setups=(
            ("bias_benchmark", ("vgg16-cifar10", "vgg19-cifar100", "resnet18-tinyimagenet",
                                "resnet50-imagenet")),
            ("drop_evaluation", ("vgg16-cifar10", "vgg19-cifar100", "resnet18-tinyimagenet",
                                 "resnet50-imagenet")),
            ("cdbw", ("vgg19-cifar100",)),
            ("imbalanced", ("resnet18-tinyimagenet",)),
            ("waterbirds", ("resnet50-waterbirds",)),
            ("pretraining_ablation", ("vgg19-cifar100", "resnet18-tinyimagenet")),
        ),
        seeds=(0, 1, 2),
        densities=_TENTHS,
        secondary_densities=_TENTHS,
        query_seeds=5,
        methods=BENCHMARK_METHODS,
        imbalance_factors=(2.0, 5.0, 20.0),
        query_epoch_grid=(1, 2, 4, 8, 16, 32),
        ablation_densities=(0.4, 0.5, 0.8),
        device="cuda",
        workers=1,
        threads=4,
        slurm_time_min=24 * 60,
        slurm_gpus=1,
    ),
    "fast": Profile(
        name="fast",
        description="the paper's CIFAR-10/100 experiments with a small residual network "
        "(resnet9), batch 512 and 16 epochs on one GPU; imbalanced data on long-tailed CIFAR-10 "
        "(the paper: TinyImageNet); Waterbirds as in the paper profile; 3 seeds, densities "
        "0.1-0.9, 5 query seeds",
        setups=(_FAST_CIFAR10, _FAST_CIFAR100, _PAPER_WATERBIRDS),
        experiment_setups=(
            ("bias_benchmark", ("resnet9-cifar10", "resnet9-cifar100")),
            ("drop_evaluation", ("resnet9-cifar10", "resnet9-cifar100")),
            ("cdbw", ("resnet9-cifar100",)),
            ("imbalanced", ("resnet9-cifar10",)),
            ("waterbirds", ("resnet50-waterbirds",)),
            ("pretraining_ablation", ("resnet9-cifar100",)),
        ),
        seeds=(0, 1, 2),
        densities=_TENTHS,
        secondary_densities=_TENTHS,
        query_seeds=5,
        methods=BENCHMARK_METHODS,
        imbalance_factors=(2.0, 5.0, 20.0),
        query_epoch_grid=(1, 2, 4, 8),
        ablation_densities=(0.4, 0.5, 0.8),
        device="cuda",
        workers=1,
        threads=4,
        slurm_time_min=4 * 60,
        slurm_gpus=1,
    ),
}


def get_profile(name: str) -> Profile:
    """The :class:`Profile` called ``name`` (one of :data:`PROFILE_NAMES`)."""
    return PROFILES[check_profile(name)]


# --------------------------------------------------------------------------- specs


#: RunSpec fields an experiment set decides itself (not overridable).
_FIXED_FIELDS = ("dataset", "model", "protocol", "method", "density", "seed", "schema_version")


def _base_spec_fields(profile: Profile, setup: TrainingSetup, device: str) -> dict[str, Any]:
    return dict(
        dataset=setup.dataset, model=setup.model, dataset_options=setup.dataset_options,
        train_subset=setup.train_subset, epochs=setup.epochs, drop_epochs=setup.drop_epochs,
        batch_size=setup.batch_size, lr=setup.lr, weight_decay=setup.weight_decay,
        augment=setup.augment, max_shift=setup.max_shift, hflip=setup.hflip, query_epochs=setup.query_epochs, query_seeds=profile.query_seeds,
        device=device, bf16=setup.bf16, channels_last=setup.channels_last,
    )


def _protocol_fields(profile: Profile, fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` with the profile's protocol choices on the runs they apply to: its CDB-W weight
    rule on CDB-W trainings that name none and its Dynamic Uncertainty window on Dynamic
    Uncertainty runs."""
    fields = dict(fields)
    if fields.get("cdbw") or fields.get("query_cdbw"):
        fields.setdefault("cdbw_weights", profile.cdbw_weights)
    if fields.get("method") == "dynamic_uncertainty":
        fields["du_window"] = profile.du_window
    return fields


def _runs_for(experiment: str, profile: Profile, setup: TrainingSetup, densities, seeds):
    """(fields) dicts of the runs of ``experiment`` on ``setup``; the base fields are added later."""
    runs: list[dict[str, Any]] = []

    def add(**fields):
        runs.append(fields)

    for seed in seeds:
        if experiment == "imbalanced":
            for factor in profile.imbalance_factors:
                add(protocol="none", density=1.0, seed=seed, imbalance_factor=factor)
                add(protocol="none", density=1.0, seed=seed, imbalance_factor=factor, cdbw=True)
                for d in densities:
                    for rule in ("paper", "counts"):
                        add(protocol="random+drop", density=d, seed=seed, imbalance_factor=factor,
                            quota_rule=rule)
                    add(protocol="strategy", method="el2n", density=d, seed=seed,
                        imbalance_factor=factor)
            continue
        add(protocol="none", density=1.0, seed=seed)
        if experiment in ("cdbw", "waterbirds"):
            add(protocol="none", density=1.0, seed=seed, cdbw=True)
        if experiment == "cdbw":
            add(protocol="none", density=1.0, seed=seed, cdbw=True, cdbw_weights=CDBW_COMPARED_RULE)
        for d in densities:
            if experiment == "bias_benchmark":
                add(protocol="random", density=d, seed=seed)
                for method in profile.methods if setup.methods is None else setup.methods:
                    add(protocol="strategy", method=method, density=d, seed=seed)
            elif experiment == "drop_evaluation":
                add(protocol="random", density=d, seed=seed)
                add(protocol="random+drop", density=d, seed=seed)
                for method in setup.strategies:
                    for protocol in ("strategy", "random+strategyq"):
                        add(protocol=protocol, method=method, density=d, seed=seed)
                    add(protocol="strategy+drop", method=method, density=d, seed=seed,
                        recall_query=profile.recall_query)
            elif experiment == "cdbw":
                add(protocol="random+drop", density=d, seed=seed)
                add(protocol="strategy", method="el2n", density=d, seed=seed)
                add(protocol="strategy+drop", method="el2n", density=d, seed=seed)
                add(protocol="strategy", method="el2n", density=d, seed=seed, cdbw=True)
                add(protocol="strategy", method="el2n", density=d, seed=seed, query_cdbw=True)
                add(protocol="strategy", method="el2n", density=d, seed=seed, cdbw=True,
                    cdbw_weights=CDBW_COMPARED_RULE)
                add(protocol="strategy", method="el2n", density=d, seed=seed, query_cdbw=True,
                    cdbw_weights=CDBW_COMPARED_RULE)
            elif experiment == "waterbirds":
                add(protocol="random", density=d, seed=seed)
                add(protocol="random+drop", density=d, seed=seed)
                add(protocol="strategy", method="el2n", density=d, seed=seed)
                add(protocol="strategy+drop", method="el2n", density=d, seed=seed)
                add(protocol="random+drop", density=d, seed=seed, drop_over="groups")
                add(protocol="strategy+drop", method="el2n", density=d, seed=seed,
                    drop_over="groups")
            elif experiment == "pretraining_ablation":
                for query_epochs in profile.query_epoch_grid:
                    add(protocol="random+drop", density=d, seed=seed, query_epochs=query_epochs)
    return runs


def _default_densities(profile: Profile, setup: TrainingSetup, experiment: str) -> tuple[float, ...]:
    """The densities of ``experiment`` on ``setup`` when the caller gives none."""
    if experiment in ("bias_benchmark", "drop_evaluation"):
        return profile.densities if setup.densities is None else setup.densities
    if experiment == "pretraining_ablation":
        return profile.ablation_densities
    return profile.secondary_densities


def experiment_settings(
    profile: str | Profile,
    experiment: str,
    *,
    setup: str | None = None,
    dataset: str | None = None,
    model: str | None = None,
    densities: Sequence[float] | None = None,
    seeds: Sequence[int] | None = None,
    device: str | None = None,
    **overrides: Any,
) -> dict[str, list]:
    """The :class:`~dropkit.spec.RunSpec` s of one experiment set (book chapter), by setting.

    A *setting* is one :class:`TrainingSetup` of the experiment set; the book draws one row of
    figures, and gives one verdict per claim, for each (:func:`setting_name` names it).

    Args:
        profile: a profile name or :class:`Profile`.
        experiment: one of :data:`EXPERIMENT_SETS`.
        setup: run only the experiment's setup of this name (e.g. ``"cnn-fashion-mnist"``;
            default: all of them).
        dataset: run only the experiment's setups on this dataset (default: all of them).
        model: replace the setups' model (e.g. ``"cnn"`` instead of ``"mlp"``).
        densities: replace the profile's (and the setups' own) densities for this experiment
            (values in (0, 1]).
        seeds: replace every setting's seeds (default: :meth:`Profile.seeds_for` of each setup).
        device: replace the profile's device.
        overrides: any other :class:`~dropkit.spec.RunSpec` field applied to every run
            (``epochs``, ``lr``, ``query_seeds``, ``pretrained_path``, ``train_subset`` ...);
            the fields an experiment varies itself (imbalance factors, the query-epoch grid,
            the CDB-W variants) keep the experiment's values.

    Returns:
        ``{setting name: its specs}`` in the order of the experiment's setups, each list without
        duplicates in a stable order (full-dataset runs included). A run that two settings share
        (same cache key) is listed under both; :func:`experiment_specs` lists it once.
    """
    from dropkit.spec import RunSpec

    if isinstance(profile, str):
        profile = get_profile(profile)
    elif not isinstance(profile, Profile):
        raise ValueError(f"profile={profile!r} must be a profile name or a Profile")
    check_experiment(experiment)
    valid = [f.name for f in dataclasses.fields(RunSpec) if f.name not in _FIXED_FIELDS]
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown override(s) {unknown}; overridable run fields: {', '.join(valid)}"
        )
    setups = profile.setups_for(experiment)
    for attribute, value in (("name", setup), ("dataset", dataset)):
        if value is not None:
            choices = list(dict.fromkeys(getattr(s, attribute) for s in setups))
            if value not in choices:
                option = "setup" if attribute == "name" else attribute
                raise ValueError(f"{option}={value!r} is not used by experiment {experiment!r} in profile "
                                 f"{profile.name!r}; choose one of {', '.join(choices)}")
            setups = tuple(s for s in setups if getattr(s, attribute) == value)
    names = [setting_name(s, model) for s in setups]
    if model is not None:
        if not isinstance(model, str):
            raise ValueError(f"model={model!r} must be a model name")
        setups = tuple(dataclasses.replace(s, model=model) for s in setups)
    chosen = None if densities is None else _densities(densities)
    seeds = None if seeds is None else _seeds(seeds)
    device = profile.device if device is None else device

    by_setting: dict[str, list] = {}
    for name, training in zip(names, setups):
        if training.needs_pretrained and not overrides.get("pretrained_path"):
            raise ValueError(
                f"setup {training.name!r} fine-tunes ImageNet-pretrained weights: pass "
                "pretrained_path=<a local ResNet-50 state_dict file>"
            )
        base = _base_spec_fields(profile, training, device)
        if experiment == "cdbw":
            base["query_epochs"] = max(CDBW_MIN_QUERY_EPOCHS, base["query_epochs"])
        densities = chosen or _densities(_default_densities(profile, training, experiment))
        specs: dict[str, Any] = {}
        setting_seeds = seeds or _seeds(profile.seeds_for(experiment, training.name))
        for fields in _runs_for(experiment, profile, training, densities, setting_seeds):
            fields = _protocol_fields(profile, fields)
            spec = RunSpec(**{**base, **overrides, **fields})
            specs.setdefault(spec.cache_key, spec)
        by_setting[name] = list(specs.values())
    return by_setting


def setting_name(setup: TrainingSetup, model: str | None = None) -> str:
    """The name of ``setup``'s setting: the setup's name (``"cnn-fashion-mnist"``), or, when a
    chapter replaces the setups' model, ``"<setup name> with model <model>"``."""
    if model is None or model == setup.model:
        return setup.name
    return f"{setup.name} with model {model}"


def experiment_specs(profile: str | Profile, experiment: str, **options: Any) -> list:
    """The :class:`~dropkit.spec.RunSpec` s of one experiment set (book chapter): the runs of
    every setting of :func:`experiment_settings` (same arguments), each once, in a stable order
    (full-dataset runs included)."""
    specs: dict[str, Any] = {}
    for runs in experiment_settings(profile, experiment, **options).values():
        for spec in runs:
            specs.setdefault(spec.cache_key, spec)
    return list(specs.values())
