"""The Lua scripts of the Redis store: each one atomic on one key (so Redis Cluster-safe), each
sent as ``EVALSHA`` of the digest below and in full only when the server lost it."""

from __future__ import annotations

import hashlib

# Returns the SHA-1 of the value, computed on the server: a version token without moving the
# value (the same token ``stores.base.value_token`` derives from the bytes), or nil on a miss.
# KEYS[1] - the session's storage key
VERSION_SCRIPT = """
local value = redis.call('GET', KEYS[1])
if not value then return false end
return redis.sha1hex(value)
"""
# Compare-and-set: rewrites the value only if its SHA-1 is still the caller's token; returns 1,
# or nil when the item changed or is gone. The new value's token is the caller's to compute:
# Lua's SHA-1 is several times slower than the client's (a 512 KB value: ~1.4 ms against
# ~0.3 ms), and the script holds the whole server while it runs.
# KEYS[1] - the storage key
# ARGV[1] - the token the caller read; ARGV[2] - the new value; ARGV[3] - ttl in seconds
CAS_SCRIPT = """
local value = redis.call('GET', KEYS[1])
if not value or redis.sha1hex(value) ~= ARGV[1] then return false end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""
# Compare-and-delete by token: deletes the item only if its SHA-1 is still ARGV[1].
# KEYS[1] - the storage key
# ARGV[1] - the token the caller read
DELETE_IF_SCRIPT = """
local value = redis.call('GET', KEYS[1])
if value and redis.sha1hex(value) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# Deletes a lock only if it still holds this owner's token; returns 1 if it did, else 0.
# KEYS[1] - the lock key
# ARGV[1] - the owner token the lock was taken with
UNLOCK_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""
SHA = {
    script: hashlib.sha1(script.encode()).hexdigest()
    for script in (VERSION_SCRIPT, CAS_SCRIPT, DELETE_IF_SCRIPT, UNLOCK_SCRIPT)
}
