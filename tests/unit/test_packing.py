"""Packing ready tasks into launches under a core budget (pure)."""

from __future__ import annotations

from dicompose.pipeline.packing import Candidate, plan_launches


def sizes(plans, candidates):
    return sorted(sum(candidates[i].files for i in plan.tasks) for plan in plans)


def test_many_tasks_fill_every_core_with_one_process_each():
    candidates = [Candidate(25) for _ in range(20)]
    plans = plan_launches(candidates, 2, budget=2, packable=True)
    assert len(plans) == 2 and all(p.processes == 1 for p in plans)
    assert sorted(i for p in plans for i in p.tasks) == list(range(20))  # every task in exactly one pack
    assert sizes(plans, candidates) == [250, 250]


def test_packs_are_balanced_by_files():
    candidates = [Candidate(n) for n in (400, 100, 100, 100, 100, 50, 50)]
    plans = plan_launches(candidates, 2, budget=2, packable=True)
    assert sizes(plans, candidates) == [450, 450]  # longest first into the emptiest pack


def test_fewer_tasks_than_cores_share_the_cores():
    plans = plan_launches([Candidate(250)], 4, budget=4, packable=True)
    assert [(p.tasks, p.processes) for p in plans] == [((0,), 4)]
    plans = plan_launches([Candidate(10), Candidate(10)], 4, budget=4, packable=True)
    assert [p.processes for p in plans] == [2, 2]


def test_the_budget_is_never_exceeded():
    for free in range(0, 5):
        for count in range(0, 7):
            plans = plan_launches([Candidate(3)] * count, free, budget=4, packable=True)
            assert sum(p.processes for p in plans) <= max(free, 0)
            plans = plan_launches([Candidate(3)] * count, free, budget=4, packable=False)
            assert sum(p.processes for p in plans) <= max(free, 0)
            assert all(len(p.tasks) == 1 for p in plans)


def test_tools_without_the_pack_contract_get_one_launch_per_task():
    plans = plan_launches([Candidate(5)] * 5, 2, budget=2, packable=False)
    assert [len(p.tasks) for p in plans] == [1, 1]  # two now; the rest when cores free up


def test_a_retry_runs_alone():
    candidates = [Candidate(5, alone=True), Candidate(5), Candidate(5), Candidate(5)]
    plans = plan_launches(candidates, 2, budget=2, packable=True)
    assert ((0,), 1) in [(p.tasks, p.processes) for p in plans]
    assert sorted(i for p in plans for i in p.tasks) == [0, 1, 2, 3]


def test_a_step_asking_for_cpus_gets_them_or_waits():
    plans = plan_launches([Candidate(5)] * 3, 2, budget=4, packable=True, cpus=2)
    assert [p.processes for p in plans] == [2]
    assert plan_launches([Candidate(5)] * 3, 1, budget=4, packable=True, cpus=2) == []
    plans = plan_launches([Candidate(5)] * 3, 2, budget=2, packable=True, cpus=8)  # capped at the budget
    assert [p.processes for p in plans] == [2]


def test_pack_limits_leave_the_rest_for_later():
    plans = plan_launches([Candidate(5)] * 10, 2, budget=2, packable=True, max_tasks=3)
    assert [len(p.tasks) for p in plans] == [3, 3]
    plans = plan_launches([Candidate(1500)] * 4, 2, budget=2, packable=True, max_files=2000)
    assert [len(p.tasks) for p in plans] == [1, 1]
