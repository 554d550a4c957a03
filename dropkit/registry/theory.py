"""Chapter 01: the claims of Section 3 (the Gaussian mixture), Figure 3 and Figure 4.

Replicates are simulated datasets (:func:`dropkit.theory.simulation_table`: 50 datasets of 400
points, fixed before looking, issue 28) and Figure 4a's random mixtures
(:func:`dropkit.theory.figure4a_table`). "Near" a threshold is an equivalence claim whose margin
comes from the theory, not from noise: half the distance between the two optima ``t*`` and
``t̂``, i.e. the ERM lies nearer the named optimum than the other one."""

from __future__ import annotations

import numpy as np

from dropkit.claims import Context as ContextRule
from dropkit.claims import Correlation, Effect, Equivalence, Evidence, Exact, Superiority
from dropkit.registry.claim import Claim
from dropkit.theory import GaussianMixture, average_optimal_threshold, class_risks, worst_class_optimal_threshold

#: The simulated datasets of the claims (pre-registered: at least 50, issue 28).
N_DATASETS = 50
N_POINTS = 400
N_DRAWS = 2000
#: ``(strategy, density)`` pairs of the simulation table.
RUNS = (("none", 1.0), ("random-optimal", 0.5), ("ssp", 0.5), ("random-ssp-quotas", 0.5),
        ("random-drop", 0.75), ("random-drop", 0.5))
_S3 = "Section 3"


def _rows(frame, strategy, density):
    rows = frame[(frame["strategy"] == strategy) & np.isclose(frame["density"].astype(float), density)]
    if rows.empty:
        raise ValueError(f"no simulated datasets of {strategy!r} at d = {density:g}")
    return rows.sort_values("seed")


def _near(strategy: str, density: float, optimum: str):
    """Per dataset: ERM threshold minus the optimum (``"t_hat"`` or ``"t_star"``); margin half the
    distance between the optima."""
    def measure(frame, ctx):
        rows = _rows(frame, strategy, density)
        gap = abs(float(rows["t_star"].iloc[0]) - float(rows["t_hat"].iloc[0]))
        name = "t̂" if optimum == "t_hat" else "t*"
        effect = Effect(tuple(rows["threshold"] - rows[optimum]), tuple(int(s) for s in rows["seed"]), "x",
                        f"ERM threshold T minus {name} after {strategy} pruning to d = {density:g}",
                        replicate="dataset")
        return Evidence({name: effect}, margin=gap / 2,
                        margin_source=f"half the distance between the optima |t* - t̂| = {gap:.3f}: T nearer "
                                      f"{name} than the other optimum")
    return measure


def _risks(frame, ctx):
    mixture = GaussianMixture()
    t_star = average_optimal_threshold(*mixture.params, 1.0)
    t_hat = worst_class_optimal_threshold(*mixture.params)
    (r0, r1), (h0, h1) = class_risks(t_star, *mixture.params), class_risks(t_hat, *mixture.params)
    return Evidence(computed={"R0[t*(1)]": 100 * float(r0), "R1[t*(1)]": 100 * float(r1),
                              "R0(t̂)": 100 * float(h0), "R1(t̂)": 100 * float(h1)})


def _ssp_quotas_gain(frame, ctx):
    full = _rows(frame, "none", 1.0)
    pruned = _rows(frame, "random-ssp-quotas", 0.5)
    values = 100 * (full["worst_risk"].to_numpy() - pruned["worst_risk"].to_numpy())
    return Evidence({"": Effect(tuple(values), tuple(int(s) for s in full["seed"]), "pp",
                                "worst-class risk of the ERM on the full dataset minus after random pruning "
                                "with SSP's class counts to d = 0.5", replicate="dataset")})


def _draws(frame):
    valid = frame[frame["valid"].astype(bool) & np.isfinite(frame["error_ratio"]) & np.isfinite(frame["variance_ratio"])
                  & (frame["error_ratio"] > 0)]
    if len(valid) < 4:
        raise ValueError("fewer than 4 valid Figure 4a draws")
    return valid


def _approximation(frame, ctx):
    valid = _draws(frame)
    values = np.log10(valid["error_ratio"].to_numpy() / valid["variance_ratio"].to_numpy())
    return Evidence({"": Effect(tuple(values), tuple(range(len(values))), "log10",
                                "log10 of the error-based over the variance-based density ratio d0/d1 "
                                "(0: equal; -0.3: half)", replicate="point")})


def _small_ratio(frame, ctx):
    valid = _draws(frame)
    error = np.abs(np.log10(valid["error_ratio"].to_numpy() / valid["variance_ratio"].to_numpy()))
    ratio = np.log10(valid["sigma1"].to_numpy() / valid["sigma0"].to_numpy())
    return Evidence(points=(ratio, error))


CLAIMS = (
    Claim("theory-risks", "The class risks of Figure 3's mixture: 4.8 %, 12.1 % and 9.1 %",
          "R_0[t^*(1)]=4.8%, R_1[t^*(1)]=12.1%, and R_0(\\hat{t})=R_1(\\hat{t})=9.1%",
          "Figure 3 (caption)", "class risks (%) at t*(1) and t̂ of the mixture μ0 = -1, μ1 = 1, σ0 = 0.5, σ1 = 1",
          "none (statistical risks)", Exact({"R0[t*(1)]": 4.8, "R1[t*(1)]": 12.1, "R0(t̂)": 9.1, "R1(t̂)": 9.1}, 1),
          "theory", "paper-figure-3", _risks, paper="4.8 %, 12.1 %, 9.1 %"),
    Claim("theory-optimal-densities", "Random pruning with the optimal densities lands the ERM near t̂",
          "the average empirical risk minimizer (ERM) \\overline{T} fitted to datasets pruned in this fashion "
          "lands near \\hat{t}", f"{_S3}, Figure 3 (left)", "ERM threshold T minus t̂", "d = 0.5 (Figure 3)",
          Equivalence(), "theory", "paper-figure-3", _near("random-optimal", 0.5, "t_hat"),
          margin="half the distance between t* and t̂"),
    Claim("theory-ssp-stays", "After SSP the ERM stays near t*",
          "the solution remains close to t^*(N_0/N_1) even after pruning", f"{_S3}, Figure 3 (middle), "
          "Appendix B.3", "ERM threshold T minus t*(1)", "d = 0.5 (Figure 3)", Equivalence(), "theory",
          "paper-figure-3", _near("ssp", 0.5, "t_star"), margin="half the distance between t* and t̂"),
    Claim("theory-ssp-quotas", "Random pruning with SSP's class ratios improves worst-class risk",
          "random subsampling according to class-wise pruning proportions defined by SSP does improve "
          "worst-class accuracy", f"{_S3}, Figure 3 (right)",
          "worst-class risk of the ERM, full dataset minus pruned", "d = 0.5 (Figure 3)", Superiority(),
          "theory", "paper-figure-3", _ssp_quotas_gain),
    Claim("theory-error-ratios", "Error-based class densities approximate the variance-based ones",
          "these new error-based class densities approximate the optimal variance-based ones fairly well",
          f"{_S3}, Figure 4a", "log10(error-based / variance-based d0/d1)", "none (random mixtures)",
          ContextRule("'fairly well' (no margin stated)"), "theory_draws", "paper-figure-4a", _approximation),
    Claim("theory-error-ratios-small", "Error-based density ratios approximate the variance-based ones best when σ1/σ0 is small",
          "especially when σ_1/σ_0 is small", f"{_S3}, Figure 4a",
          "rank correlation of log10(σ1/σ0) with |log10(error-based / variance-based d0/d1)|",
          "none (random mixtures)", Correlation(+1), "theory_draws", "paper-figure-4a", _small_ratio),
    *(Claim(f"theory-drop-{round(100 * d)}", f"Random pruning with DRoP quotas to d = {d:g} lands the ERM near t̂",
            "random pruning according to DRoP class proportions lands the average ERM near the worst-class "
            "optimal value", f"{_S3}, Figure 4b", "ERM threshold T minus t̂", f"d = {d:g} (Figure 4b)",
            Equivalence(), "theory", "paper-figure-4b", _near("random-drop", d, "t_hat"),
            margin="half the distance between t* and t̂") for d in (0.75, 0.5)),
)
