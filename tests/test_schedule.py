"""The sweep's dispatch order: highest level (longest chain of work) first, dependencies respected."""

from __future__ import annotations

import pytest

from dropkit.schedule import Job, ReadyQueue, levels, simulated_wall


def test_levels_are_cost_plus_longest_waiting_chain():
    jobs = [Job("q", 2.0), Job("a", 5.0, ("q",)), Job("b", 1.0, ("q",)), Job("c", 3.0, ("a",)),
            Job("free", 4.0)]
    assert levels(jobs) == {"q": 10.0, "a": 8.0, "b": 1.0, "c": 3.0, "free": 4.0}


def test_levels_reject_cycles_and_duplicates():
    with pytest.raises(ValueError, match="cycle"):
        levels([Job("a", 1.0, ("b",)), Job("b", 1.0, ("a",))])
    with pytest.raises(ValueError, match="twice"):
        levels([Job("a", 1.0), Job("a", 2.0)])
    with pytest.raises(ValueError, match="cost"):
        Job("a", float("nan"))


def test_queue_hands_out_long_chains_first_and_releases_dependants():
    jobs = [Job("free-small", 1.0), Job("query", 3.0), Job("run-after-query", 4.0, ("query",)),
            Job("free-big", 5.0), Job("done-elsewhere", 2.0, ("not-in-this-sweep",))]
    queue = ReadyQueue(jobs)
    assert queue.pop().key == "query"            # level 7
    assert queue.pop().key == "free-big"         # level 5
    assert queue.pop().key == "done-elsewhere"   # its prerequisite is not a job here: ready
    assert queue.pop().key == "free-small"
    assert queue.pop() is None                   # run-after-query still waits
    queue.done("query")
    assert queue.pop().key == "run-after-query"
    for key in ("free-big", "done-elsewhere", "free-small", "run-after-query"):
        queue.done(key)
    assert len(queue) == 0
    with pytest.raises(ValueError, match="already done"):
        queue.done("query")


def _bias_benchmark_like():
    """Two long full-length queries, five short ones, each with final runs, and query-free runs."""
    jobs = []
    for q, cost in (("forgetting", 10.0), ("coreset", 10.0)) + tuple((f"el2n{s}", 1.0) for s in range(5)):
        jobs.append(Job(f"query-{q}", cost))
        jobs += [Job(f"run-{q}-{d}", 10.0 * d, (f"query-{q}",)) for d in (0.1, 0.5, 0.9)]
    jobs += [Job("full", 10.0)] + [Job(f"random-{d}", 10.0 * d) for d in (0.1, 0.5, 0.9)]
    return jobs


def test_critical_path_order_beats_two_phases_and_nears_the_floor():
    jobs = _bias_benchmark_like()
    total = sum(job.cost for job in jobs)
    queries_first = [j for j in jobs if j.key.startswith("query")] + [j for j in jobs if not j.key.startswith("query")]
    two_phase = simulated_wall(queries_first, 2, order="given")
    ours = simulated_wall(jobs, 2)
    assert ours < two_phase
    assert total / 2 <= ours <= 1.05 * total / 2   # within 5% of perfect use of both workers


def test_simulated_wall_exact_on_a_chain_and_one_worker():
    jobs = [Job("a", 1.0), Job("b", 2.0, ("a",)), Job("c", 3.0, ("b",))]
    assert simulated_wall(jobs, 4) == 6.0           # a chain cannot use a second worker
    assert simulated_wall(jobs + [Job("d", 4.0)], 1) == 10.0
    assert simulated_wall([], 2) == 0.0
    with pytest.raises(ValueError, match="workers"):
        simulated_wall(jobs, 0)
