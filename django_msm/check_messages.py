"""The messages of ``django_msm.checks``: one constant per check id, with its hint.

Kept apart from the checks so each stays readable: a message names the setting and shows the
offending value; its hint says what to write instead. Ids are never reused; errors and warnings
share one sequence of numbers.
"""

E001 = "DJANGO_MSM must be a dict, not {value}."
E002 = "DJANGO_MSM has unknown key {key}."
E003 = "DJANGO_MSM['MEMCACHED_NODES'] = {value} is invalid: {error}."
E004 = "DJANGO_MSM['MEMCACHED_NODES'] repeats node id {node_id!r}."
E005 = "DJANGO_MSM['FAILOVER_NODES'] names unknown node {node_id!r}."
E006 = "DJANGO_MSM['FAILOVER_NODES'] = {value} lists every node."
E007 = "DJANGO_MSM['FAILOVER_NODES'] = {value} needs two or more MEMCACHED_NODES with ids."
E008 = "DJANGO_MSM[{key!r}] must be a positive number of seconds, not {value}."
E009 = "DJANGO_MSM['STORAGE_KEY_PREFIX'] has unsupported token {token!r}."
# E010 ("Redis nodes are not supported yet") is retired: ids are never reused.
E011 = "DJANGO_MSM[{key!r}] must be a positive integer, not {value}."
# E010 and E012 ("... is not supported yet") are retired: ids are never reused.
E013 = "DJANGO_MSM['MEMCACHED_NODES'] node {node!r} names cache {alias!r}, which is not in CACHES."
E014 = (
    "DJANGO_MSM['MEMCACHED_NODES'] node {node!r}: CACHES[{alias!r}] is not a django-redis cache "
    "(BACKEND {backend})."
)
E015 = "DJANGO_MSM['MEMCACHED_NODES'] node {node!r}: CACHES[{alias!r}] has no socket timeout."
E016 = "DJANGO_MSM['MEMCACHED_NODES'] node {node!r} has an invalid Redis URL {url}: {error}."
E017 = "DJANGO_MSM['FAILOVER_NODES'] = {value} is invalid: {error}."
E018 = (
    "DJANGO_MSM['STORAGE_KEY_PREFIX'] = {value} makes a prefix of {length} characters; "
    "the limit is {limit}."
)
E020 = "DJANGO_MSM['ROUTE'] must be None or letters, digits and '_' (max 32), not {value}."
E021 = "DJANGO_MSM['REQUEST_URI_IGNORE_PATTERN'] = {value} is not a valid regex: {error}."
E022 = "DJANGO_MSM[{key!r}] must be True or False, not {value}."
E023 = "DJANGO_MSM['LOCKING_MODE'] is invalid: {value}."
E024 = "DJANGO_MSM['LOCKING_MODE'] = {value}: the uriPattern is not a valid regex: {error}."
E025 = "DJANGO_MSM['LOCK_TIMEOUT_POLICY'] must be 'fail' or 'proceed', not {value}."
E026 = "DJANGO_MSM['SESSION_ATTRIBUTE_FILTER'] = {value} is not a valid regex: {error}."
W027 = (
    "DJANGO_MSM['LOCK_WAIT_TIMEOUT'] ({wait} s) is shorter than LOCK_EXPIRATION ({expiration} s)."
)
W028 = "DJANGO_MSM['MEMCACHED_NODES'] has a single node: sessions have no backup copy."
E029 = "DJANGO_MSM['END_SESSIONS_ON_PASSWORD_CHANGE'] needs USER_SESSIONS."

E030 = "DJANGO_MSM[{key!r}] = {value} is invalid: {error}."
E031 = "DJANGO_MSM['DRAINING_NODES'] names unknown node {node_id!r}."
E032 = "DJANGO_MSM['DRAINING_NODES'] = {value} lists every regular node."
E033 = "DJANGO_MSM['RETIRED_NODES'] names node {node_id!r}, which is still in MEMCACHED_NODES."
E034 = "DJANGO_MSM['RETIRED_NODES'] has an invalid node id {node_id!r}."
HINT_E001 = "Set DJANGO_MSM = {{'MEMCACHED_NODES': 'n1:host1:11211,n2:host2:11211'}}."
HINT_E002 = "{suggestion}Known keys: {known}."
HINT_E003 = "Use 'id:host:port' entries separated by commas, or a single 'host:port'."
HINT_E004 = "Give every node its own id."
HINT_E005 = "{suggestion}Use ids from MEMCACHED_NODES: {known}."
HINT_E006 = "Leave at least one regular node out of FAILOVER_NODES."
HINT_E007 = "Configure two or more nodes as 'id:host:port'."
HINT_E008 = "Use a duration in seconds greater than 0, such as 1.0."
HINT_E009 = "Use 'static:<name>' tokens of letters, digits, '_', '.' and '-'."
HINT_E011 = "Use a whole number greater than 0."
HINT_E013 = (
    "{suggestion}Add CACHES[{alias!r}] with BACKEND 'django_redis.cache.RedisCache' "
    "(CACHES has {known})."
)
HINT_E014 = "Use BACKEND 'django_redis.cache.RedisCache' for it, or an 'id:redis://' node."
HINT_E015 = (
    "Set CACHES[{alias!r}]['OPTIONS']['SOCKET_TIMEOUT'] (seconds, such as 1.0): "
    "without it a hung Redis server holds every request."
)
HINT_E016 = "Use 'id:redis://host:port/db' or 'id:rediss://host:port/db'."
HINT_E017 = "Use node ids separated by commas, such as 'n1', or a list of ids."
HINT_E018 = "Use shorter 'static:<name>' tokens: memcached keys stop at 250 bytes."
HINT_E020 = "Use the instance name the load balancer routes on, such as 'web1'."
HINT_E021 = "Use a Python regex matched against request.path, such as r'\\.(css|js|png)$'."
HINT_E022 = "Use a bool."
HINT_E023 = "Use 'none', 'all', 'auto' or 'uriPattern:<regex>'."
HINT_E024 = "Use a Python regex searched in request.path, such as 'uriPattern:^/cart/'."
HINT_E025 = "Use 'fail' (answer 503 with Retry-After) or 'proceed' (run unlocked, warn)."
HINT_E026 = "Use a Python regex matched against whole session key names, such as 'cart|user_.*'."
HINT_W027 = (
    "A request may hold its session lock for up to LOCK_EXPIRATION; others of the same user wait "
    "at most LOCK_WAIT_TIMEOUT, then answer 503 (or run unlocked). Leave LOCK_WAIT_TIMEOUT unset "
    "(it follows LOCK_EXPIRATION) or raise it."
)
HINT_W028 = (
    "Configure two or more nodes as 'id:host:port' (or 'id:cache:ALIAS'), on separate machines: "
    "with one node, every session is lost when it fails, and writes made while it fails over "
    "are dropped."
)
HINT_E029 = "Set USER_SESSIONS to True, or END_SESSIONS_ON_PASSWORD_CHANGE to False."
HINT_E030 = "Use node ids separated by commas, such as 'n3', or a list of ids."
HINT_E031 = (
    "{suggestion}Use ids from MEMCACHED_NODES: {known}; a node already removed from it belongs "
    "in RETIRED_NODES."
)
HINT_E032 = "Leave at least one regular node to take new sessions and backups."
HINT_E033 = (
    "Drain it first (DRAINING_NODES, then manage.py msm_drain), then move it from "
    "MEMCACHED_NODES to RETIRED_NODES."
)
HINT_E034 = "Use the id the node had in MEMCACHED_NODES (letters, digits and '_', max 32)."
