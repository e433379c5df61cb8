"""What every ``Store`` adapter owes the core, written once and run against each store.

``StoreContract`` is a mixin, not a test class (as Django's ``SessionTestsMixin``): a concrete
class in ``tests/test_store_contract.py`` says how its store is built (``make_store``) and how
time passes for it, and pytest runs every test once per store. One test per documented
behaviour of ``stores.base.Store``; the expectations come from its docstrings, not from any
one adapter.

Where the stores differ by design the difference is a hook (a class attribute named after what
it documents). A difference that is a bug is named in the concrete class's ``known_bugs``: the
test runs as a strict xfail, so it fails loudly the day the bug is fixed and the entry stays.
``tests/server_store_contract.py`` adds what only a store with a server process has
(``ServerStoreContract``: timeouts on a paused node, refusals, restarts, connections to close) and
what only a node with an item size limit has (``ItemLimitContract``: ``ItemTooLarge``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import pytest

from django_msm.exceptions import NodeUnavailable
from django_msm.stores import Store
from django_msm.stores.base import value_token
from tests.store_calls import (
    DAY,
    KEY,
    LOCK_TTL,
    LONG_TTL,
    NEEDS_ITEM,
    RACERS,
    SHORT_LOCK_TTL,
    VALUE,
    WRITERS,
    every_call,
    race,
)


class StoreContract:
    """The behaviour of one store adapter, per ``Store`` method; subclasses provide the hooks."""

    # Version tokens derived from the bytes (``value_token``): rewriting identical bytes keeps
    # the token. memcached's CAS changes on every write instead (the base class documents both).
    tokens_follow_bytes: ClassVar[bool] = True
    # The node refuses values over this many bytes (memcached's ``-I``; a few KiB less fit, the
    # item's header and key count too), or None if it enforces no limit.
    item_size_limit: ClassVar[int | None] = None
    # Calls that fail unrefused on connections pooled before the node died (they are noticed
    # only when used); later calls are refused, which tells the core the node is dead.
    stale_connection_failures: ClassVar[int] = 0
    # Test name (or ``name[param]``) -> the bug that makes it fail on this store.
    known_bugs: ClassVar[dict[str, str]] = {}

    # -- hooks --------------------------------------------------------------------------------
    def make_store(self) -> Store:
        """A new store on a node that holds nothing."""
        raise NotImplementedError

    def stop_node(self, store: Store) -> None:
        """Make the node stop answering for good (a killed process, a switched-off node)."""
        raise NotImplementedError

    def let_pass(self, seconds: float) -> None:
        """Let ``seconds`` pass on the clock the store and its node expire things by."""
        raise NotImplementedError

    def wait_expired(self, key: str, ttl: float) -> None:
        """Return once the node dropped ``key`` (written ``ttl`` s ago), without using the store."""
        raise NotImplementedError

    def assert_expires_in(self, store: Store, key: str, ttl: int) -> None:
        """Assert that the node keeps ``key`` for about ``ttl`` more seconds, then drops it.

        The last step of a test: a store on a fake clock may move it.
        """
        raise NotImplementedError

    # -- fixtures -----------------------------------------------------------------------------
    @pytest.fixture(autouse=True)
    def _known_bug(self, request: pytest.FixtureRequest) -> None:
        """Run the tests listed in ``known_bugs`` as strict xfails, with the bug as the reason."""
        node_name = request.node.name
        reason = self.known_bugs.get(node_name) or self.known_bugs.get(node_name.split("[")[0])
        if reason:
            request.applymarker(pytest.mark.xfail(reason=f"BUG: {reason}", strict=True))

    @pytest.fixture
    def store(self) -> Iterator[Store]:
        store = self.make_store()
        yield store
        store.close()

    # -- get, set, add, replace, delete, touch -------------------------------------------------
    def test_get_of_a_missing_key_is_none(self, store: Store) -> None:
        assert store.get(KEY) is None

    def test_set_stores_the_bytes_as_given_and_overwrites(self, store: Store) -> None:
        store.set(KEY, VALUE, 100)
        assert store.get(KEY) == VALUE
        store.set(KEY, b"second", 100)
        assert store.get(KEY) == b"second"

    def test_empty_bytes_are_a_value_not_a_miss(self, store: Store) -> None:
        store.set(KEY, b"", 100)
        assert store.get(KEY) == b""
        assert store.add(KEY, VALUE, 100) is False
        assert store.get_versioned(KEY)[1] is not None

    def test_add_stores_only_if_absent(self, store: Store) -> None:
        assert store.add(KEY, VALUE, 100) is True
        assert store.get(KEY) == VALUE
        assert store.add(KEY, b"other", 100) is False
        assert store.get(KEY) == VALUE

    def test_replace_stores_only_if_present_and_never_resurrects(self, store: Store) -> None:
        assert store.replace(KEY, VALUE, 100) is False
        assert store.get(KEY) is None
        store.set(KEY, b"old", 100)
        assert store.replace(KEY, VALUE, 100) is True
        assert store.get(KEY) == VALUE
        store.delete(KEY)
        assert store.replace(KEY, VALUE, 100) is False
        assert store.get(KEY) is None

    def test_delete_says_whether_the_key_was_there(self, store: Store) -> None:
        store.set(KEY, VALUE, 100)
        assert store.delete(KEY) is True
        assert store.get(KEY) is None
        assert store.delete(KEY) is False

    def test_touch_keeps_the_value_and_is_false_when_absent(self, store: Store) -> None:
        assert store.touch(KEY, 100) is False
        assert store.get(KEY) is None
        store.set(KEY, VALUE, 100)
        assert store.touch(KEY, 200) is True
        assert store.get(KEY) == VALUE

    def test_concurrent_adds_create_the_key_once(self, store: Store) -> None:
        answers = race(RACERS, lambda i: store.add(KEY, b"racer-%d" % i, 100))
        assert answers.count(True) == 1, answers
        assert store.get(KEY) == b"racer-%d" % answers.index(True)

    # -- expiry --------------------------------------------------------------------------------
    @pytest.mark.parametrize("ttl", [100, LONG_TTL], ids=["100s", "90days"])
    @pytest.mark.parametrize("writer", list(WRITERS))
    def test_every_write_gives_the_item_its_ttl(self, store: Store, writer: str, ttl: int) -> None:
        """The ttl given replaces the old one (here a longer one), also past 30 days."""
        if writer in NEEDS_ITEM:
            store.set(KEY, b"old", 5 * DAY if ttl < DAY else 100 * DAY)
        WRITERS[writer](store, KEY, VALUE, ttl)
        assert store.get(KEY) == (b"old" if writer == "touch" else VALUE)
        self.assert_expires_in(store, KEY, ttl)

    @pytest.mark.parametrize("ttl", [0, -1])
    def test_ttl_of_zero_or_less_means_already_expired(self, store: Store, ttl: int) -> None:
        """memcached's answers: the write 'happens', and the item is gone at once."""
        assert store.add(KEY, VALUE, ttl) is True
        assert store.get(KEY) is None
        for writer, answer in (("replace", True), ("touch", True), ("set", None)):
            store.set(KEY, VALUE, 100)
            assert WRITERS[writer](store, KEY, b"new", ttl) is answer, writer
            assert store.get(KEY) is None, writer
        assert store.replace(KEY, VALUE, ttl) is False
        assert store.touch(KEY, ttl) is False
        store.set(KEY, VALUE, 100)
        assert store.add(KEY, b"new", ttl) is False
        assert store.get(KEY) == VALUE

    def test_an_expired_item_is_absent_to_every_call(self, store: Store) -> None:
        keys = [f"{KEY}-{i}" for i in range(7)]
        for key in keys:
            store.set(key, VALUE, 1)
        self.wait_expired(keys[-1], 1)
        assert [store.get(key) for key in keys[:2]] == [None, None]
        assert store.get_versioned(keys[1]) == (None, None)
        assert store.version(keys[2]) is None
        assert store.touch(keys[3], 100) is False
        assert store.replace(keys[4], VALUE, 100) is False
        assert store.replace_versioned(keys[5], VALUE, 100) is None
        assert store.add(keys[6], b"new", 100) is True
        assert store.get(keys[6]) == b"new"

    def test_delete_of_an_expired_item_is_false(self, store: Store) -> None:
        store.set(KEY, VALUE, 1)
        self.wait_expired(KEY, 1)
        assert store.delete(KEY) is False

    # -- version tokens -----------------------------------------------------------------------
    def test_versions_of_a_missing_key_are_none(self, store: Store) -> None:
        assert store.get_versioned(KEY) == (None, None)
        assert store.version(KEY) is None

    def test_add_versioned_returns_the_current_token_or_none(self, store: Store) -> None:
        token = store.add_versioned(KEY, VALUE, 100)
        assert isinstance(token, bytes)
        assert store.version(KEY) == token
        assert store.get_versioned(KEY) == (VALUE, token)
        assert store.add_versioned(KEY, b"other", 100) is None
        assert store.get_versioned(KEY) == (VALUE, token)

    def test_replace_versioned_returns_a_new_token_and_never_creates(self, store: Store) -> None:
        assert store.replace_versioned(KEY, VALUE, 100) is None
        assert store.get(KEY) is None
        old = store.add_versioned(KEY, b"old", 100)
        new = store.replace_versioned(KEY, VALUE, 100)
        assert isinstance(new, bytes) and new != old
        assert store.get_versioned(KEY) == (VALUE, new)

    def test_a_rewrite_changes_the_token_a_touch_does_not(self, store: Store) -> None:
        store.set(KEY, VALUE, 100)
        token = store.version(KEY)
        assert store.touch(KEY, 300) is True
        assert store.version(KEY) == token
        store.set(KEY, b"rewritten", 100)
        assert store.version(KEY) not in (None, token)

    def test_identical_bytes_rewritten(self, store: Store) -> None:
        """Derived tokens are ``value_token`` of the bytes; server versions move on every write."""
        assert store.tokens_follow_bytes is self.tokens_follow_bytes  # what the core relies on
        token = store.add_versioned(KEY, VALUE, 100)
        again = store.replace_versioned(KEY, VALUE, 100)
        if self.tokens_follow_bytes:
            assert token == again == store.version(KEY) == value_token(VALUE)
            written = store.cas(KEY, b"other", 100, again)
            assert written == value_token(b"other") == store.get_versioned(KEY)[1]
        else:
            assert again is not None and again != token

    # -- batched reads and compare-and-set (repair) -----------------------------------------------
    def test_get_many_versioned_returns_the_present_keys_with_their_tokens(
        self, store: Store
    ) -> None:
        token = store.add_versioned(KEY, VALUE, 100)
        other = store.add_versioned(f"{KEY}-b", b"b", 100)
        found = store.get_many_versioned([KEY, f"{KEY}-missing", f"{KEY}-b"])
        assert found == {KEY: (VALUE, token), f"{KEY}-b": (b"b", other)}
        assert store.get_many_versioned([]) == {}

    def test_add_many_versioned_adds_each_absent_key_and_says_which(self, store: Store) -> None:
        taken = store.add_versioned(KEY, b"taken", 100)
        answers = store.add_many_versioned([(f"{KEY}-a", VALUE, 100), (KEY, VALUE, 100),
                                            (f"{KEY}-b", b"b", 100)])
        assert answers[1] is None and store.get_versioned(KEY) == (b"taken", taken)
        assert answers[0] is not None and store.get_versioned(f"{KEY}-a") == (VALUE, answers[0])
        assert answers[2] is not None and store.get_versioned(f"{KEY}-b") == (b"b", answers[2])
        assert store.add_many_versioned([]) == []
        self.assert_expires_in(store, f"{KEY}-a", 100)

    def test_delete_if_deletes_only_the_version_it_was_given(self, store: Store) -> None:
        assert store.delete_if(KEY, b"1") is False
        token = store.add_versioned(KEY, b"old", 100)
        assert token is not None
        new = store.replace_versioned(KEY, VALUE, 100)
        assert new is not None
        if new != token:
            assert store.delete_if(KEY, token) is False
            assert store.get(KEY) == VALUE
        assert store.delete_if(KEY, new) is True
        assert store.get(KEY) is None

    def test_cas_writes_only_over_the_version_it_was_given(self, store: Store) -> None:
        assert store.cas(KEY, VALUE, 100, b"1") is None  # absent: never created
        assert store.get(KEY) is None
        first = store.add_versioned(KEY, b"first", 100)
        assert first is not None
        assert store.cas(KEY, VALUE, 100, first + b"0") is None
        assert store.get(KEY) == b"first"
        second = store.cas(KEY, b"second", 100, first)
        assert isinstance(second, bytes) and second != first
        assert store.get_versioned(KEY) == (b"second", second)
        assert store.cas(KEY, b"late", 100, first) is None  # a writer that read "first" lost
        assert store.get(KEY) == b"second"
        assert store.cas(KEY, b"x", 100, b"not a token") is None
        assert store.get(KEY) == b"second"
        self.assert_expires_in(store, KEY, 100)
        store.delete(KEY)
        assert store.cas(KEY, b"late", 100, second) is None
        assert store.get(KEY) is None

    def test_started_commands_answer_as_the_calls_would(self, store: Store) -> None:
        """``start`` sends now and answers later; several may be out at once on one store."""
        other = f"{KEY}-other"
        missing, added = store.start("get_versioned", KEY), store.start("add", other, b"o", 100)
        assert (missing(), added()) == ((None, None), True)
        created = store.start("add_versioned", KEY, b"first", 100)
        again = store.start("add", other, b"late", 100)
        token, refused = created(), again()
        assert isinstance(token, bytes) and refused is False
        assert store.start("get_versioned", KEY)() == (b"first", token)
        assert store.start("add_versioned", KEY, b"late", 100)() is None
        stale = store.start("cas", KEY, b"x", 100, token + b"0")
        not_a_token = store.start("cas", KEY, b"x", 100, b"not a token")
        assert (stale(), not_a_token()) == (None, None)
        new = store.start("cas", KEY, b"second", 100, token)()
        assert isinstance(new, bytes) and store.get_versioned(KEY) == (b"second", new)
        assert store.get(other) == b"o"
        self.assert_expires_in(store, KEY, 100)

    def test_commands_started_together_answer_as_the_calls_would(self, store: Store) -> None:
        """``start_many``: several commands to one node at once (one write on one connection
        where the adapter can), each answered in its place, whichever is asked first."""
        other, third = f"{KEY}-other", f"{KEY}-third"
        token = store.add_versioned(KEY, b"first", 100)
        assert token is not None
        first = store.start_many([
            ("get_versioned", (KEY,)), ("add", (other, b"o", 100)), ("add", (KEY, b"no", 100)),
            ("get_versioned", (third,)), ("add_versioned", (third, b"t", 100)),
            ("cas", (KEY, b"stale", 100, token + b"0")),
        ])
        assert first[4]() == store.get_versioned(third)[1]  # asked out of order
        assert [first[i]() for i in (0, 1, 2, 3, 5)] == [
            (b"first", token), True, False, (None, None), None]
        second = store.start_many([("cas", (KEY, b"second", 100, token)),
                                   ("get_versioned", (other,))])
        new, (value, _) = second[0](), second[1]()
        assert isinstance(new, bytes) and value == b"o"
        assert store.get_versioned(KEY) == (b"second", new)
        self.assert_expires_in(store, KEY, 100)

    def test_concurrent_cas_on_one_version_has_one_winner(self, store: Store) -> None:
        token = store.add_versioned(KEY, b"start", 100)
        assert token is not None
        answers = race(RACERS, lambda i: store.cas(KEY, b"racer-%d" % i, 100, token))
        winners = [index for index, answer in enumerate(answers) if answer is not None]
        assert len(winners) == 1, answers
        assert store.get_versioned(KEY) == (b"racer-%d" % winners[0], answers[winners[0]])

    # -- locks ----------------------------------------------------------------------------------
    def test_lock_is_exclusive_until_its_proof_unlocks_it(self, store: Store) -> None:
        proof = store.lock(KEY, b"owner-a", 5.0)
        assert isinstance(proof, bytes)
        assert store.lock(KEY, b"owner-b", 5.0) is None
        other = store.lock(f"{KEY}-other", b"owner-b", 5.0)  # a proof, but not this lock's
        assert other is not None
        assert store.unlock(KEY, other) is False
        assert store.lock(KEY, b"owner-b", 5.0) is None
        assert store.unlock(KEY, proof) is True
        assert store.unlock(KEY, proof) is False
        assert store.lock(KEY, b"owner-b", 5.0) is not None

    def test_lock_holds_for_its_ttl_then_frees_itself(self, store: Store) -> None:
        assert store.lock(KEY, b"owner-a", LOCK_TTL) is not None
        self.let_pass(LOCK_TTL * 0.3)
        assert store.lock(KEY, b"owner-b", LOCK_TTL) is None
        self.let_pass(LOCK_TTL * 0.7 + 0.2)
        assert store.lock(KEY, b"owner-b", LOCK_TTL) is not None

    def test_a_late_unlock_never_frees_the_next_owners_lock(self, store: Store) -> None:
        late = store.lock(KEY, b"owner-a", SHORT_LOCK_TTL)
        assert late is not None
        self.let_pass(SHORT_LOCK_TTL + 0.1)
        proof = store.lock(KEY, b"owner-b", 5.0)
        assert proof is not None and proof != late
        assert store.unlock(KEY, late) is False
        assert store.lock(KEY, b"owner-c", 5.0) is None
        assert store.unlock(KEY, proof) is True

    def test_unlock_of_an_expired_lock_is_false(self, store: Store) -> None:
        """The core counts such releases (``locks_expired_before_release``)."""
        proof = store.lock(KEY, b"owner-a", SHORT_LOCK_TTL)
        assert proof is not None
        self.let_pass(SHORT_LOCK_TTL + 0.1)
        assert store.unlock(KEY, proof) is False

    def test_concurrent_locks_have_one_winner(self, store: Store) -> None:
        proofs = race(RACERS, lambda i: store.lock(KEY, b"owner-%d" % i, 5.0))
        winners = [proof for proof in proofs if proof is not None]
        assert len(winners) == 1, proofs
        assert store.unlock(KEY, winners[0]) is True

    # -- sizes, a stopped node --------------------------------------------------------------------
    def test_a_large_value_round_trips(self, store: Store) -> None:
        """2 MiB where nothing limits items, else just under the node's limit."""
        limit = self.item_size_limit
        value = bytes(range(256)) * ((2 << 20 if limit is None else limit - 4096) // 256)
        store.set(KEY, value, 100)
        assert store.get(KEY) == value

    def test_a_stopped_node_fails_every_call_with_node_unavailable(self, store: Store) -> None:
        assert store.ping() is None
        store.set(KEY, VALUE, 100)
        self.stop_node(store)
        for index, (name, call) in enumerate(every_call(KEY)):
            with pytest.raises(NodeUnavailable) as info:
                call(store)
            assert info.value.node_id == store.node.label, name
            assert KEY not in str(info.value), name
            if index >= self.stale_connection_failures:
                assert info.value.refused is True, (name, info.value)

