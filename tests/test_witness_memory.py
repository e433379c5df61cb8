"""Issue 12: commits and relocation claims fenced at the witness (``core.witness``,
``core.retirement``), over in-memory nodes. The rules the HTTP test
(test_locking_under_faults.py) relies on, one by one: of two writers that loaded one revision
only the first commits; of two movers of one key only one wins; nothing writes over a
relocation's tombstone; a missing witness leaves the home alone to decide and forbids moves.
"""

from __future__ import annotations

import pytest

from django_msm.core.copies import UpdateResult
from django_msm.core.keys import SessionId, new_id
from django_msm.core.witness import Commit
from django_msm.exceptions import SessionConflict
from tests.test_backup_memory import TTL, Cluster, bk, make_cluster, pk


@pytest.fixture
def cluster() -> Cluster:
    return make_cluster()


def commit(
    cluster: Cluster, sid: SessionId, payload: bytes, base: int, strict: bool = True,
    token: bytes | None = None,
) -> Commit:
    """Save as a request that loaded revision ``base`` (and the home's ``token``) would."""
    copy = cluster.copy(payload, base + 1)
    return cluster.parts.witness.commit(
        sid, cluster.node(sid.node_id), copy, TTL, base, token, strict
    )


def claim(cluster: Cluster, sid: SessionId, base: int, new: SessionId) -> None:
    cluster.parts.retirement.claim(sid, cluster.node(sid.node_id), base, new, TTL)


def test_of_two_locked_writers_of_one_revision_only_the_first_commits(cluster: Cluster) -> None:
    sid, _ = cluster.session("n1")
    assert commit(cluster, sid, b'{"n":2}', base=1).result is UpdateResult.STORED
    with pytest.raises(SessionConflict) as refused:
        commit(cluster, sid, b'{"n":2,"late":1}', base=1)
    assert refused.value.moved_to is None
    for node, key in (("n1", pk(sid)), ("n2", bk(sid))):
        assert cluster.stored(node, key).payload == b'{"n":2}'  # the refused save left no trace


def test_unlocked_writers_keep_last_writer_wins(cluster: Cluster) -> None:
    sid, _ = cluster.session("n1")
    commit(cluster, sid, b'{"n":2}', base=1, strict=False)
    assert commit(cluster, sid, b'{"n":9}', base=1, strict=False).result is UpdateResult.STORED
    assert cluster.stored("n2", bk(sid)).payload == b'{"n":9}'


def test_a_key_is_moved_once_and_the_loser_learns_where(cluster: Cluster) -> None:
    sid, _ = cluster.session("n1")
    first, second = new_id("n3"), new_id("n2")
    claim(cluster, sid, 1, first)
    with pytest.raises(SessionConflict) as refused:
        claim(cluster, sid, 1, second)
    assert refused.value.moved_to == str(first)
    cluster.parts.retirement.retire(sid, cluster.node("n1"))  # the winner's next step
    assert cluster.load(sid).moved_to == str(first)  # the signed forward in the tombstone


def test_nothing_commits_over_a_relocation(cluster: Cluster) -> None:
    sid, _ = cluster.session("n1")
    moved = new_id("n3")
    claim(cluster, sid, 1, moved)
    for strict in (True, False):
        with pytest.raises(SessionConflict) as refused:
            commit(cluster, sid, b'{"n":2}', base=1, strict=strict)
        assert refused.value.moved_to == str(moved)


def test_a_move_from_a_stale_revision_is_refused(cluster: Cluster) -> None:
    sid, _ = cluster.session("n1")
    commit(cluster, sid, b'{"n":2}', base=1)  # committed after the mover loaded revision 1
    with pytest.raises(SessionConflict):
        claim(cluster, sid, 1, new_id("n3"))


def test_without_its_witness_the_home_decides_and_no_move_is_allowed(cluster: Cluster) -> None:
    sid, _ = cluster.session("n1")
    cluster.store("n2").down = True
    assert commit(cluster, sid, b'{"n":2}', base=1).result is UpdateResult.STORED
    assert cluster.stored("n1", pk(sid)).payload == b'{"n":2}'
    assert cluster.stored("n3", bk(sid)).payload == b'{"n":2}'  # a copy past the witness
    with pytest.raises(SessionConflict):
        claim(cluster, sid, 2, new_id("n3"))


def test_a_home_that_fails_after_the_witness_commit_loses_nothing(cluster: Cluster) -> None:
    sid, _ = cluster.session("n1")
    cluster.store("n1").down = True
    done = commit(cluster, sid, b'{"n":2}', base=1)
    assert (done.result, done.at_witness) == (UpdateResult.LOST, True)  # the caller moves it
    assert cluster.stored("n2", bk(sid)).payload == b'{"n":2}'


def test_an_unlocked_save_after_another_is_the_last_writer_on_both_copies(
    cluster: Cluster,
) -> None:
    sid, _ = cluster.session("n1")
    token = cluster.load(sid).token  # loaded before the other request saved
    commit(cluster, sid, b'{"n":100}', base=1, strict=False, token=cluster.load(sid).token)
    assert commit(cluster, sid, b'{"n":2}', base=1, strict=False, token=token).token is not None
    for node, key in (("n1", pk(sid)), ("n2", bk(sid))):
        assert cluster.stored(node, key).payload == b'{"n":2}'


def test_the_home_is_left_to_a_save_that_passed_the_witness_later(cluster: Cluster) -> None:
    """Two unlocked saves of one revision: A passes the witness first, then B, and B writes the
    home before A does. A must not put its older copy over B's: the copies would differ."""
    sid, _ = cluster.session("n1")
    token = cluster.load(sid).token
    witness, home = cluster.parts.witness, cluster.node("n1")
    later = cluster.service.pack(cluster.copy(b'{"b":1}', 2))
    real_cas = witness.cas

    def b_overtakes(node, key, data, ttl, expected):  # A's home write: B got there first
        if key == pk(sid) and b'"a"' in data:
            witness.cas = real_cas
            assert real_cas(cluster.node("n2"), bk(sid), later, TTL, witness.read(
                cluster.node("n2"), bk(sid))[1]) is not None
            assert real_cas(home, pk(sid), later, TTL, token) is not None
        return real_cas(node, key, data, ttl, expected)

    witness.cas = b_overtakes
    done = commit(cluster, sid, b'{"a":1}', base=1, strict=False, token=token)
    assert (done.result, done.token, done.at_witness) == (UpdateResult.STORED, None, True)
    for node, key in (("n1", pk(sid)), ("n2", bk(sid))):
        assert cluster.stored(node, key).payload == b'{"b":1}'


def test_a_home_only_save_never_writes_over_a_tombstone(cluster: Cluster) -> None:
    sid, copy = cluster.session("n1")
    token = cluster.load(sid).token
    cluster.store("n2").down = True  # the witness: deletions leave tombstones where they can
    cluster.delete(sid, copy.revision)
    assert cluster.stored("n1", pk(sid)).is_tombstone
    with pytest.raises(SessionConflict) as refused:
        commit(cluster, sid, b'{"n":2}', base=1, strict=False, token=token)
    assert refused.value.deleted and cluster.stored("n1", pk(sid)).is_tombstone


def test_a_lapsed_lock_cannot_save_over_a_home_only_commit(cluster: Cluster) -> None:
    sid, _ = cluster.session("n1")
    token = cluster.load(sid).token
    cluster.store("n2").down = True
    commit(cluster, sid, b'{"n":2}', base=1, token=token)  # the lock holder, witness away
    with pytest.raises(SessionConflict):
        commit(cluster, sid, b'{"n":2,"late":1}', base=1, token=token)  # its lock lapsed
    assert cluster.stored("n1", pk(sid)).payload == b'{"n":2}'


def test_a_single_node_is_its_own_witness() -> None:
    single = make_cluster("n1:10.0.0.1:11211")
    sid, _ = single.session("n1")
    token = single.load(sid).token
    commit(single, sid, b'{"n":100}', base=1, strict=False, token=single.load(sid).token)
    with pytest.raises(SessionConflict):  # locked: a change it never saw
        commit(single, sid, b'{"n":2}', base=1, token=token)
    commit(single, sid, b'{"n":2}', base=1, strict=False, token=token)  # unlocked: last wins
    assert single.stored("n1", pk(sid)).payload == b'{"n":2}'
    moved, loaded = new_id("n1"), single.load(sid)
    retirement = single.parts.retirement
    retirement.claim(sid, single.node("n1"), loaded.copy.revision, moved, TTL, loaded.token)
    with pytest.raises(SessionConflict) as refused:
        retirement.claim(sid, single.node("n1"), loaded.copy.revision, new_id("n1"), TTL,
                         loaded.token)
    assert refused.value.moved_to is None  # the home's version moved on: refused, no fork
    assert single.load(sid).moved_to == str(moved)


def test_an_asynchronous_write_never_lands_over_a_relocation() -> None:
    cluster = make_cluster(SESSION_BACKUP_ASYNC=True)
    sid, _ = cluster.session("n1")
    write = cluster.parts.witness.later(
        sid, cluster.node("n1"), cluster.copy(b'{"n":2}', 2), TTL, 1, None
    )
    moved = new_id("n3")
    claim(cluster, sid, 1, moved)  # another request moved it before the write ran
    cluster.parts.retirement.retire(sid, cluster.node("n1"))
    write()
    assert cluster.load(sid).moved_to == str(moved)
    assert cluster.stored("n1", pk(sid)) is None  # nothing written under the old key


def test_a_save_of_the_loaded_copy_commits_without_reading_the_witness(cluster: Cluster) -> None:
    """Versions that follow the bytes: the witness copy's version is known from the home's."""
    sid, _ = cluster.session("n1")
    token = cluster.load(sid).token
    cluster.forget_calls()
    commit(cluster, sid, b'{"n":2}', base=1, token=token)
    assert cluster.calls()["n2"] == [("cas", bk(sid))]
    assert cluster.calls()["n1"] == [("cas", pk(sid))]


def test_without_byte_derived_versions_the_witness_is_read_first(cluster: Cluster) -> None:
    """memcached's CAS values of two nodes may coincide: a guess could pass a tombstone."""
    sid, _ = cluster.session("n1")
    token = cluster.load(sid).token
    cluster.store("n2").tokens_follow_bytes = False
    cluster.forget_calls()
    commit(cluster, sid, b'{"n":2}', base=1, token=token)
    assert [op for op, _ in cluster.calls()["n2"]] == ["get", "cas"]


def test_the_read_free_save_still_meets_every_refusal(cluster: Cluster) -> None:
    sid, _ = cluster.session("n1")
    token = cluster.load(sid).token
    commit(cluster, sid, b'{"n":2}', base=1, token=token)
    with pytest.raises(SessionConflict) as refused:  # a locked writer of the same revision
        commit(cluster, sid, b'{"n":2,"late":1}', base=1, token=token)
    assert refused.value.moved_to is None
    moved, loaded = new_id("n3"), cluster.load(sid)
    claim(cluster, sid, loaded.copy.revision, moved)
    with pytest.raises(SessionConflict) as refused:  # unlocked, over the move's tombstone
        commit(cluster, sid, b'{"n":3}', base=2, strict=False, token=loaded.token)
    assert refused.value.moved_to == str(moved)


def test_an_unlocked_save_is_not_dropped_when_a_repair_rewrites_the_witness(
    cluster: Cluster,
) -> None:
    """A repair pass brings a stale witness copy up to the home's revision between this save's
    read of the witness and its compare-and-set. That is no concurrent save (the revision is
    the one this request loaded): the save must commit, not be dropped as superseded (a lost
    update seen on memcached, whose versions change with every write)."""
    sid, _ = cluster.session("n1")
    stale = cluster.store("n2").get(bk(sid))
    commit(cluster, sid, b'{"n":2}', base=1, token=cluster.load(sid).token)
    cluster.store("n2").set(bk(sid), stale, TTL)  # the witness missed revision 2
    loaded = cluster.load(sid)
    witness, current = cluster.parts.witness, cluster.store("n1").get(pk(sid))
    real_read = witness.read

    def repair_between(node, key):  # the repair's compare-and-set lands after this read
        witness.read = real_read
        held = real_read(node, key)
        assert cluster.store("n2").cas(key, current, TTL, held[1]) is not None
        return held

    witness.read = repair_between
    done = commit(cluster, sid, b'{"n":3}', base=2, strict=False, token=loaded.token)
    assert done.result is UpdateResult.STORED
    for node, key in (("n1", pk(sid)), ("n2", bk(sid))):
        assert cluster.stored(node, key).payload == b'{"n":3}'


def test_a_committed_save_reaches_the_home_after_the_witness_lost_it(cluster: Cluster) -> None:
    """After the witness took this save it restarted empty and a repair restored the home's
    older copy there; the home copy changed too (the same repair). No save passed the witness:
    the home must still get this save, or both copies hold the older one."""
    sid, _ = cluster.session("n1")
    loaded = cluster.load(sid)
    witness, older = cluster.parts.witness, cluster.store("n1").get(pk(sid))
    real_cas = witness.cas

    def restart_and_restore(node, key, data, ttl, expected):
        if key == pk(sid):
            witness.cas = real_cas
            cluster.store("n2").delete(bk(sid))
            cluster.store("n2").add(bk(sid), older, TTL)
            return None  # the repair rewrote the home too: this compare-and-set misses
        return real_cas(node, key, data, ttl, expected)

    witness.cas = restart_and_restore
    done = commit(cluster, sid, b'{"n":2}', base=1, strict=False, token=loaded.token)
    assert done.result is UpdateResult.STORED
    assert cluster.stored("n1", pk(sid)).payload == b'{"n":2}'


def test_a_save_does_not_verify_the_witness_copy_its_load_verified(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The witness usually holds the bytes the load verified at the home: no second MAC."""
    from django_msm.core import copies as copies_module

    sid, _ = cluster.session("n1")
    cluster.store("n2").tokens_follow_bytes = False  # as memcached: the witness is read
    verified: list[bytes] = []
    real_unpack = copies_module.unpack
    monkeypatch.setattr(copies_module, "unpack",
                        lambda data, keys: verified.append(data) or real_unpack(data, keys))
    loaded = cluster.load(sid)
    commit(cluster, sid, b'{"n":2}', base=1, token=loaded.token)
    assert len(verified) == 1
    cluster.store("n2").set(bk(sid), b"forged" * 20, TTL)  # other bytes are verified again
    loaded = cluster.load(sid)
    commit(cluster, sid, b'{"n":3}', base=2, token=loaded.token)
    assert len(verified) == 3 and cluster.stored("n2", bk(sid)).payload == b'{"n":3}'


def _witness_reads(cluster: Cluster, sid: SessionId) -> int:
    return sum(1 for op, key in cluster.calls()["n2"] if op == "get" and key == bk(sid))


def test_a_witness_read_sent_ahead_is_the_saves_first_read(cluster: Cluster) -> None:
    sid, _ = cluster.session("n1")
    cluster.store("n2").tokens_follow_bytes = False  # as memcached: the save reads the witness
    loaded = cluster.load(sid)
    ahead = cluster.parts.witness.read_ahead(sid, cluster.node("n1"))
    assert ahead is not None
    cluster.forget_calls()
    copy = cluster.copy(b'{"n":2}', 2)
    cluster.parts.witness.commit(sid, cluster.node("n1"), copy, TTL, 1, loaded.token, True, ahead)
    assert _witness_reads(cluster, sid) == 0
    assert cluster.stored("n2", bk(sid)).payload == b'{"n":2}'


@pytest.mark.parametrize("strict", [True, False])
def test_a_witness_changed_after_the_read_ahead_is_read_again(
    cluster: Cluster, strict: bool
) -> None:
    """Another request saved between this one's read-ahead and its save: the compare-and-set
    fails, the witness is read again, and the save meets the usual rules."""
    sid, _ = cluster.session("n1")
    cluster.store("n2").tokens_follow_bytes = False
    loaded = cluster.load(sid)
    ahead = cluster.parts.witness.read_ahead(sid, cluster.node("n1"))
    commit(cluster, sid, b'{"other":2}', base=1, strict=False, token=loaded.token)
    copy, node = cluster.copy(b'{"mine":2}', 2), cluster.node("n1")
    if strict:
        with pytest.raises(SessionConflict):
            cluster.parts.witness.commit(sid, node, copy, TTL, 1, loaded.token, True, ahead)
        assert cluster.stored("n2", bk(sid)).payload == b'{"other":2}'
    else:  # a concurrent save of the same revision: it landed first, this one is superseded
        done = cluster.parts.witness.commit(sid, node, copy, TTL, 1, loaded.token, False, ahead)
        assert done.result is UpdateResult.STORED
        assert cluster.stored("n2", bk(sid)) == cluster.stored("n1", pk(sid))


def test_no_read_is_sent_ahead_where_the_save_reads_nothing(cluster: Cluster) -> None:
    sid, _ = cluster.session("n1")  # in-memory versions follow the bytes
    assert cluster.parts.witness.read_ahead(sid, cluster.node("n1")) is None
    single = make_cluster("n1:10.0.0.1:11211")
    one, _ = single.session("n1")
    single.store("n1").tokens_follow_bytes = False
    assert single.parts.witness.read_ahead(one, single.node("n1")) is None
