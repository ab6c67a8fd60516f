"""Workers' heartbeats: refreshed in place, listed freshest first, removed and pruned."""

from __future__ import annotations

from bharatsend_core.ports.storage import Heartbeat, Storage

from .builders import at


def beats(storage: Storage) -> list[tuple[str, float]]:
    with storage.unit_of_work() as uow:
        return [(h.owner, (h.seen_at - at(0)).total_seconds()) for h in uow.heartbeats.list()]


def beat(storage: Storage, owner: str, seen: float, kind: str = "worker") -> None:
    with storage.unit_of_work() as uow:
        uow.heartbeats.beat(Heartbeat(owner, kind, at(0), at(seen)))
        uow.commit()


def test_a_beat_refreshes_the_same_row_and_the_freshest_comes_first(storage: Storage) -> None:
    assert beats(storage) == []
    beat(storage, "a:1:x", 10)
    beat(storage, "b:2:y", 20)
    beat(storage, "a:1:x", 30)
    assert beats(storage) == [("a:1:x", 30.0), ("b:2:y", 20.0)]
    with storage.unit_of_work() as uow:
        first = uow.heartbeats.list()[0]
    assert (first.kind, first.started_at) == ("worker", at(0))


def test_remove_and_prune(storage: Storage) -> None:
    for owner, seen in (("a", 10), ("b", 20), ("c", 30)):
        beat(storage, owner, seen)
    with storage.unit_of_work() as uow:
        uow.heartbeats.remove("b")
        uow.heartbeats.remove("nobody")
        assert uow.heartbeats.prune(at(15)) == 1
        uow.commit()
    assert beats(storage) == [("c", 30.0)]


def test_a_rolled_back_beat_leaves_nothing(storage: Storage) -> None:
    with storage.unit_of_work() as uow:
        uow.heartbeats.beat(Heartbeat("a", "worker", at(0), at(1)))
    assert beats(storage) == []
