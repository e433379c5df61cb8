"""The signed stored form of a session copy: round trips, compression, and what must not verify.

The expected layout (``>BBBQdd`` header, payload, HMAC-SHA256 trailer) is written out here rather
than taken from the module, so that a change of the stored format, which would strand every
stored session on upgrade, fails a test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
import threading
import zlib
from unittest import mock

import pytest
from django.test import override_settings

from django_msm.core import envelope
from django_msm.core.envelope import Copy, Kind, pack, unpack
from django_msm.exceptions import CorruptCopy
from django_msm.runtime import get_config
from tests.test_backup_memory import TTL, make_cluster

KEY = hashlib.sha256(b"test key").digest()
OTHER = hashlib.sha256(b"other key").digest()
HEADER = struct.Struct(">BBBQdd")
OVERHEAD = HEADER.size + 32
SESSION = Copy(Kind.SESSION, 7, 1_700_000_000.5, 1_700_001_209.5, b'{"cart":["apple"]}')


def signed(body: bytes, key: bytes = KEY) -> bytes:
    return body + hmac.new(key, body, hashlib.sha256).digest()


@pytest.mark.parametrize(
    "copy",
    [
        SESSION,
        Copy(Kind.SESSION, 0, 0.0, 0.0, b""),
        Copy(Kind.SESSION, 2**64 - 1, 1.25, 2.5, bytes(range(256))),
        Copy(Kind.TOMBSTONE, 3, 1_700_000_000.0, 1_700_000_100.0),
    ],
)
def test_round_trip(copy: Copy) -> None:
    data = pack(copy, KEY, compress_min_size=4096)
    assert unpack(data, (KEY,)) == copy
    assert unpack(data, (KEY,)).is_tombstone is (copy.kind is Kind.TOMBSTONE)


def test_stored_layout() -> None:
    data = pack(SESSION, KEY, compress_min_size=4096)
    header = HEADER.pack(1, 1, 0, 7, 1_700_000_000.5, 1_700_001_209.5)
    assert data == signed(header + SESSION.payload)


def test_small_payload_is_not_compressed_even_if_it_would_shrink() -> None:
    copy = Copy(Kind.SESSION, 1, 1.0, 2.0, b"a" * 4095)
    data = pack(copy, KEY, compress_min_size=4096)
    assert len(data) == OVERHEAD + 4095 and data[2] == 0
    assert unpack(data, (KEY,)) == copy


def test_large_compressible_payload_is_compressed() -> None:
    payload = b'{"items":' + b'"apple",' * 2000 + b"}"
    copy = Copy(Kind.SESSION, 1, 1.0, 2.0, payload)
    data = pack(copy, KEY, compress_min_size=4096)
    assert data[2] == 1
    assert len(data) < len(payload) // 10
    assert zlib.decompress(data[HEADER.size : -32]) == payload
    assert unpack(data, (KEY,)) == copy


def test_large_incompressible_payload_is_stored_as_is() -> None:
    payload = os.urandom(20_000)
    copy = Copy(Kind.SESSION, 1, 1.0, 2.0, payload)
    data = pack(copy, KEY, compress_min_size=4096)
    assert data[2] == 0 and data[HEADER.size : -32] == payload
    assert unpack(data, (KEY,)) == copy


def test_threshold_is_inclusive() -> None:
    data = pack(Copy(Kind.SESSION, 1, 1.0, 2.0, b"b" * 100), KEY, compress_min_size=100)
    assert data[2] == 1


# -- what must not verify ----------------------------------------------------------------------
def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


@pytest.mark.parametrize("index", [0, 1, 2, 3, 10, 20, HEADER.size, HEADER.size + 5, -32, -1])
def test_any_flipped_bit_is_corrupt(index: int) -> None:
    data = pack(SESSION, KEY, compress_min_size=4096)
    with pytest.raises(CorruptCopy):
        unpack(_flip(data, index), (KEY,))


def test_wrong_key_is_corrupt() -> None:
    data = pack(SESSION, KEY, compress_min_size=4096)
    with pytest.raises(CorruptCopy, match="signature"):
        unpack(data, (OTHER,))
    with pytest.raises(CorruptCopy):
        unpack(data, ())


@pytest.mark.parametrize("cut", [1, 32, 33, len(SESSION.payload)])
def test_truncated_is_corrupt(cut: int) -> None:
    data = pack(SESSION, KEY, compress_min_size=4096)
    with pytest.raises(CorruptCopy):
        unpack(data[:-cut], (KEY,))


@pytest.mark.parametrize("data", [b"", b"x", b"\x01" * (OVERHEAD - 1)])
def test_too_short_is_corrupt(data: bytes) -> None:
    with pytest.raises(CorruptCopy, match="too short"):
        unpack(data, (KEY,))


@pytest.mark.parametrize(("version", "kind"), [(0, 1), (2, 1), (255, 1), (1, 0), (1, 3), (1, 255)])
def test_unknown_version_or_kind_is_corrupt_even_when_signed(version: int, kind: int) -> None:
    data = signed(HEADER.pack(version, kind, 0, 1, 1.0, 2.0) + b"{}")
    with pytest.raises(CorruptCopy, match="unknown stored format"):
        unpack(data, (KEY,))


def test_compressed_flag_on_garbage_is_corrupt() -> None:
    data = signed(HEADER.pack(1, 1, 1, 1, 1.0, 2.0) + b"not zlib at all")
    with pytest.raises(CorruptCopy, match="decompress"):
        unpack(data, (KEY,))


def test_foreign_values_are_corrupt() -> None:
    """What Django's cache engine or an unsigned pickle would have left under the same key."""
    for data in (b'{"cart": ["apple"]}', b"\x80\x04\x95" + b"\x00" * 80):
        with pytest.raises(CorruptCopy):
            unpack(data, (KEY,))


# -- keys from SECRET_KEY and SECRET_KEY_FALLBACKS ---------------------------------------------
def test_copies_signed_with_a_fallback_secret_still_verify() -> None:
    with override_settings(SECRET_KEY="old secret", SECRET_KEY_FALLBACKS=[]):
        old_keys = get_config().signing_keys
    data = pack(SESSION, old_keys[0], compress_min_size=4096)
    with override_settings(SECRET_KEY="new secret", SECRET_KEY_FALLBACKS=["older", "old secret"]):
        keys = get_config().signing_keys
        assert len(keys) == 3 and keys[2] == old_keys[0]
        assert unpack(data, keys) == SESSION
        assert unpack(data, keys).signed_with == 2  # which key verified it: re-sign it
        assert unpack(pack(SESSION, keys[0], 4096), keys).signed_with == 0
    with override_settings(SECRET_KEY="new secret", SECRET_KEY_FALLBACKS=[]):
        keys = get_config().signing_keys
        assert keys[0] != old_keys[0]
        with pytest.raises(CorruptCopy):
            unpack(data, keys)


def test_signing_key_is_derived_not_the_raw_secret() -> None:
    """The envelope key is salted: a Django signature and ours never share a key."""
    with override_settings(SECRET_KEY="secret", SECRET_KEY_FALLBACKS=[]):
        (key,) = get_config().signing_keys
    assert key != b"secret" and key != hashlib.sha256(b"secret").digest()
    assert len(key) == 32


def test_large_incompressible_payloads_skip_compression_after_a_sample() -> None:
    """512 KB of random bytes is not run through zlib whole (it cost ~13 ms for nothing)."""
    noise = Copy(Kind.SESSION, 1, 0.0, 0.0, os.urandom(512 * 1024))
    sampler = envelope._sampler
    with mock.patch("django_msm.core.envelope.zlib.compress", wraps=zlib.compress) as compress, \
            mock.patch.object(sampler, "compressed_size", wraps=sampler.compressed_size) as sample:
        packed = pack(noise, b"k" * 32, 4096)
    assert [len(call.args[0]) for call in sample.call_args_list] == [4 * 1024]
    assert compress.call_count == 0
    assert packed[2] == 0  # flags: stored as it is
    text = Copy(Kind.SESSION, 1, 0.0, 0.0, b'{"cart":"apple"}' * 40_000)
    assert pack(text, b"k" * 32, 4096)[2] == 1  # compressible: compressed
    encoded = base64.b64encode(os.urandom(384 * 1024))  # shrinks by only a quarter
    assert pack(Copy(Kind.SESSION, 1, 0.0, 0.0, encoded), b"k" * 32, 4096)[2] == 0


def test_each_sample_is_measured_on_its_own() -> None:
    """The sampler's compressor lives on, but it forgets each sample: the same compressible
    sample measures the same every time (a kept history would make repeats look tiny and
    compress incompressible sessions), and as much as a fresh compressor makes of it."""
    sample = b'{"sku":"BK-1042","qty":1,"price":"24.90"},' * 100
    sizes = [envelope._sampler.compressed_size(sample) for _ in range(3)]
    assert sizes[0] == sizes[1] == sizes[2]
    assert abs(sizes[0] - len(zlib.compress(sample, 1))) <= 8  # zlib's header and trailer
    noise = base64.b64encode(os.urandom(3 * 1024))
    assert envelope._sampler.compressed_size(noise) > 0.7 * len(noise)


def test_every_thread_samples_with_its_own_compressor() -> None:
    """Two threads' samples must not interleave in one compressor."""
    own = envelope._sampler._compressor
    seen: list[object] = []
    thread = threading.Thread(target=lambda: seen.append(envelope._sampler._compressor))
    thread.start()
    thread.join()
    assert seen and seen[0] is not own


def test_a_session_reuses_its_last_compression_decision_and_samples_again_now_and_then() -> None:
    """A large session's saves skip the sample (its cost is paid by every save) and do as its
    previous copy did; every 16th revision samples afresh, in case the content changed."""
    text = b'{"cart":"apple"}' * 4_000  # 64 KB that compresses well
    stored_raw = unpack(pack(Copy(Kind.SESSION, 1, 0.0, 0.0, text, compressed=False),
                             b"k" * 32, 4096), (b"k" * 32,))
    assert stored_raw.compressed is False  # the decision given was followed, no sample
    assert envelope.compression_of(stored_raw) is False
    sampler = envelope._sampler
    with mock.patch.object(sampler, "compressed_size", wraps=sampler.compressed_size) as sample:
        for revision in range(2, 17):
            copy = Copy(Kind.SESSION, revision, 0.0, 0.0, text,
                        compressed=envelope.compression_of(stored_raw))
            packed = pack(copy, b"k" * 32, 4096)
            assert packed[2] == (1 if revision == 16 else 0), revision
    assert sample.call_count == 1  # revision 16 only
    compressed = unpack(packed, (b"k" * 32,))
    assert compressed.compressed is True and envelope.compression_of(compressed) is True
    small = Copy(Kind.SESSION, 1, 0.0, 0.0, b"x" * 8_000, compressed=True)
    assert envelope.compression_of(small) is None  # never sampled: no decision to lend


def test_a_large_session_the_last_decision_would_not_fit_is_compressed_after_all() -> None:
    cluster = make_cluster(MAX_SESSION_SIZE=40_000)
    text = b'{"cart":"apple"}' * 4_000  # 64 KB raw, a few hundred bytes compressed
    previous = unpack(pack(Copy(Kind.SESSION, 1, 0.0, 0.0, text, compressed=False),
                           b"k" * 32, 4096), (b"k" * 32,))
    copy = cluster.service.new_copy(text, TTL, 2, previous)
    assert copy.compressed is False
    assert len(cluster.service.pack(copy)) < 40_000
