"""Which storage contexts a C-GET proposes: the study's own classes, each offered in every transfer syntax,
and as many (class, transfer syntax) contexts as the 128-context limit leaves, common encodings first."""

from __future__ import annotations

from pynetdicom import ALL_TRANSFER_SYNTAXES, StoragePresentationContexts

from dicompose.pacs.retrieve import COMMON_SYNTAXES, get_contexts

CT, MR, SC = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.7"


def test_one_class_gets_a_context_for_every_transfer_syntax() -> None:
    contexts = get_contexts({CT})
    assert contexts[0] == (CT, list(contexts[0][1])) and set(contexts[0][1]) == set(ALL_TRANSFER_SYNTAXES)
    singles = [syntaxes[0] for sop, syntaxes in contexts[1:] if len(syntaxes) == 1]
    assert sorted(singles) == sorted(ALL_TRANSFER_SYNTAXES) and len(contexts) == 1 + len(ALL_TRANSFER_SYNTAXES)


def test_many_classes_stay_within_the_limit_and_common_encodings_come_first() -> None:
    contexts = get_contexts({CT, MR, SC})
    assert len(contexts) == 127  # one more is the C-GET's own
    assert [sop for sop, syntaxes in contexts[:3]] == sorted({CT, MR, SC})  # every class offered whatever happens
    offered = {(sop, syntaxes[0]) for sop, syntaxes in contexts[3:]}
    assert {(sop, syntax) for sop in (CT, MR, SC) for syntax in COMMON_SYNTAXES} <= offered


def test_unknown_classes_fall_back_to_the_common_storage_classes() -> None:
    contexts = get_contexts(set())
    assert [sop for sop, _ in contexts] == [str(cx.abstract_syntax) for cx in StoragePresentationContexts][:127]
    huge = get_contexts({f"1.2.3.{n}" for n in range(300)})
    assert len(huge) == 127 and all(len(syntaxes) == len(ALL_TRANSFER_SYNTAXES) for _, syntaxes in huge)


def test_push_batches_respect_the_context_limit_and_the_instances_per_association() -> None:
    from pathlib import Path

    from dicompose.pacs.store import Instance, context_batches

    def instance(number: int, sop: str = CT, syntax: str = "1.2.840.10008.1.2.1") -> Instance:
        return Instance(Path(f"{number:04d}.dcm"), sop, f"1.2.3.{number}", syntax, "1.2", "1.2.1")

    many = [instance(n) for n in range(10)]
    assert [len(b) for b in context_batches(many)] == [10]
    assert [len(b) for b in context_batches(many, per_association=4)] == [4, 4, 2]
    syntaxes = [instance(n, f"1.2.840.10008.5.1.4.1.1.{n}", "1.2.840.10008.1.2") for n in range(130)]
    assert [len(b) for b in context_batches(syntaxes)] == [128, 2]
