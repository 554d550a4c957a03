"""Per-sample pruning scores, one float per training sample, **higher = more useful = kept first**.

Model-free cores (arrays in, scores out):

- :func:`el2n_from_logits` -- EL2N (Paul et al., 2021); high = hard = kept.
- :func:`per_sample_grad_norms` -- exact GraNd (Paul et al., 2021) over all parameters; high = kept.
- :func:`forgetting_from_correct` -- forgetting events (Toneva et al., 2019); high = kept.
- :func:`dynamic_uncertainty_from_probs` -- Dynamic Uncertainty (He et al., 2023); high = kept.
- :func:`k_center_greedy` -- CoreSet greedy k-center order (Sener & Savarese, 2018); earlier = kept
  (:func:`coreset_scores_from_order` turns the order into scores).
- :func:`ssp_from_embeddings` -- distance to the class prototype (Sorscher et al., 2022); far = kept.
- :func:`random_scores` -- seeded uniform scores.

The query protocol (:func:`compute_scores`, :class:`QueryConfig`, :class:`ScoreResult`) trains the
paper's query models and returns the scores with the query models' validation recalls for DRoP;
:func:`compute_query_scores` gives those of several methods and query lengths on one dataset with
every distinct query run (:func:`query_runs`) trained once: EL2N and GraNd share their short runs,
a shorter length is a snapshot of a longer one, and the full-length runs of Forgetting, Dynamic
Uncertainty, CoreSet and SSP are one training (:func:`shared_trainings`);
:func:`compute_prefix_scores` is its form for the lengths of one short-query method
(:func:`prefix_query_mismatch`).
"""

from dropkit.scores.coreset import KCENTER_METHODS, coreset_scores_from_order, k_center_greedy
from dropkit.scores.dynamic_uncertainty import dynamic_uncertainty_from_probs
from dropkit.scores.el2n import el2n_from_logits
from dropkit.scores.forgetting import NEVER_LEARNED_RULES, forgetting_from_correct
from dropkit.scores.grand import GRAD_NORM_METHODS, per_sample_grad_norms
from dropkit.scores.query import (
    FULL_QUERY_METHODS, METHODS, RECORD_METHODS, SHORT_QUERY_METHODS, QueryConfig, ScoreResult, compute_prefix_scores,
    compute_query_scores, compute_scores, prefix_query_mismatch, query_runs, shared_trainings,
)
from dropkit.scores.ssp import ssp_from_embeddings
from dropkit.scores.uniform import random_scores

__all__ = [
    "FULL_QUERY_METHODS", "GRAD_NORM_METHODS", "KCENTER_METHODS", "METHODS", "NEVER_LEARNED_RULES",
    "RECORD_METHODS", "SHORT_QUERY_METHODS", "QueryConfig", "ScoreResult", "compute_prefix_scores",
    "compute_query_scores", "compute_scores", "query_runs", "shared_trainings",
    "coreset_scores_from_order", "dynamic_uncertainty_from_probs", "el2n_from_logits",
    "forgetting_from_correct", "k_center_greedy", "per_sample_grad_norms", "prefix_query_mismatch", "random_scores",
    "ssp_from_embeddings",
]
