"""dropkit: distributionally robust data pruning (DRoP, ICLR 2025).

The core is a set of pure array-in/array-out functions:

- :func:`dropkit.quotas.drop_quotas` -- how many samples each class keeps (Algorithm 1);
- :func:`dropkit.select.select` -- which samples are kept;
- :func:`dropkit.metrics.robustness_summary` -- class-level robustness of predictions;
- :mod:`dropkit.theory` -- the Gaussian-mixture analysis of Section 3.

Torch is only imported by the modules that need it (scores, models, train).
"""

__version__ = "0.1.0"
