import pytest

from collapselab.config import ArmConfig
from collapselab.lab.mixing import mix
from collapselab.records import Record

HUMAN = [Record(id=f"h{i}", text=f"h{i}") for i in range(100)]
SYN = [[Record(id=f"s{g}-{i}", source="synthetic", generation=g, parent_id=f"h{i}") for i in range(100)] for g in range(3)]


def test_generation_zero_is_the_human_pool_for_every_policy():
    for arm in (ArmConfig(name="a", mix="replace"), ArmConfig(name="b", mix="accumulate"), ArmConfig(name="c", mix="ratio", ratio=0.5)):
        assert mix(arm, 0, HUMAN, [], seed=0) == HUMAN


def test_replace_trains_on_last_output_only():
    out = mix(ArmConfig(name="a", mix="replace"), 2, HUMAN, SYN[:2], seed=0)
    assert {r.generation for r in out} == {1} and len(out) == 100


def test_accumulate_keeps_everything():
    out = mix(ArmConfig(name="a", mix="accumulate"), 3, HUMAN, SYN, seed=0)
    assert len(out) == 400 and sum(r.source == "human" for r in out) == 100


def test_ratio_is_fixed_size_with_the_asked_share():
    out = mix(ArmConfig(name="a", mix="ratio", ratio=0.1), 2, HUMAN, SYN[:2], seed=0)
    assert len(out) == 100
    assert sum(r.source == "synthetic" for r in out) == 10 and all(r.generation in (None, 1) for r in out)


def test_accumulate_subsample_is_fixed_size_and_seeded():
    arm = ArmConfig(name="a", mix="accumulate_subsample", size=50)
    a, b, c = mix(arm, 3, HUMAN, SYN, seed=0), mix(arm, 3, HUMAN, SYN, seed=0), mix(arm, 3, HUMAN, SYN, seed=1)
    assert len(a) == 50 and a == b and a != c
    assert {r.generation for r in a} > {None}  # draws from synthetic as well


def test_wrong_history_length_is_an_error():
    with pytest.raises(ValueError, match="needs 2 earlier synthetic sets"):
        mix(ArmConfig(name="a", mix="replace"), 2, HUMAN, SYN[:1], seed=0)


def test_a_schedule_switches_the_policy_at_its_generation():
    arm = ArmConfig(name="recover", mix="replace", schedule=[{"generation": 2, "mix": "ratio", "ratio": 0.5},
                                                             {"generation": 3, "mix": "accumulate"}])
    assert mix(arm.at_generation(1), 1, HUMAN, SYN[:1], seed=0) == SYN[0]  # replace until generation 2
    at2 = mix(arm.at_generation(2), 2, HUMAN, SYN[:2], seed=0)
    assert len(at2) == 100 and sum(r.source == "human" for r in at2) == 50  # ratio 0.5: the human data returns
    at3 = mix(arm.at_generation(3), 3, HUMAN, SYN, seed=0)
    assert len(at3) == 400 and sum(r.source == "human" for r in at3) == 100  # then accumulate: human + every synthetic set
    assert arm.at_generation(1) is arm and arm.at_generation(7).mix == "accumulate"
