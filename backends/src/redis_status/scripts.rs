//! The Lua scripts behind every transition of the Redis status store. Each
//! runs atomically in Redis, so a job's status, its place in the fair-share
//! ledger, the search indexes and the counters change together or not at
//! all. Every script starts with [`PRELUDE`] (shared helpers); times come
//! from Redis' own clock (`TIME`), so hosts with skewed clocks agree.
//!
//! Keys (under the prefix `ZIPFLEET_STATUS_PREFIX`, `zipfleet` by default;
//! it replaces `PREFIX` in [`PRELUDE`] when the scripts are made):
//! - `job:{id}` (hash): `doc` (the status document), `state`, `fp` (spec
//!   fingerprint), `published`, `cancel`, progress counters `done`/`failed`,
//!   `tenant`, `project`, `lane` (where its message waits), `pictures`
//!   (cache keys of its pictures, one per line), `created_ms`;
//!   `job:{id}:contents` (set): SHA-256 of the pictures it used.
//! - `erased:{id}`: the tombstone of an erased job.
//! - `fair:waiting:{tenant}` (sorted set, id → accepted ms),
//!   `fair:running:{tenant}` (id → lease expiry ms), `fair:tenants` (set of
//!   tenants with jobs waiting or running), `fair:lanes` (tenant → lane),
//!   `fair:claims:{tenant}` (claim id → expiry ms: slots dispatch decisions
//!   hold for it), `fair:served` (tenant → when its last job started, ms),
//!   `fair:runs` (list: recent run times, ms).
//! - `index:all`, `index:project:{p}`, `index:tenant:{t}` (id → created
//!   ms), `index:state:{state}` (id → when it entered the state).
//! - `stats` (hash): the counters behind `/metrics`.
//!
//! The scripts name keys they compute, which a Redis Cluster refuses:
//! zipfleet needs a single Redis (with replicas), as ElastiCache's
//! cluster-mode-disabled replication group is.

/// Helpers every script starts with.
pub(super) const PRELUDE: &str = r"
local P = 'PREFIX:'
-- How long a dispatch decision's claim counts (fair::CLAIM_FOR).
local CLAIM_MS = CLAIM_FOR_MS
local STATES = {'queued', 'running', 'succeeded', 'failed', 'cancelled'}
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function is_final(state)
  return state == 'succeeded' or state == 'failed' or state == 'cancelled'
end
-- Take a job off the ledger; its tenant's lane is released once nothing of it waits.
local function unledger(id, tenant)
  if not tenant or tenant == '' then return end
  local waiting = P .. 'fair:waiting:' .. tenant
  local running = P .. 'fair:running:' .. tenant
  redis.call('ZREM', waiting, id)
  redis.call('ZREM', running, id)
  if redis.call('ZCARD', waiting) == 0 then
    redis.call('HDEL', P .. 'fair:lanes', tenant)
    if redis.call('ZCARD', running) == 0 then
      redis.call('SREM', P .. 'fair:tenants', tenant)
      redis.call('HDEL', P .. 'fair:served', tenant)
    end
  end
end
local function index_state(id, old, new, now)
  if old and old ~= '' then redis.call('ZREM', P .. 'index:state:' .. old, id) end
  redis.call('ZADD', P .. 'index:state:' .. new, now, id)
end
-- Index a new job; entries older than the statuses' time to live go.
local function index_new(id, tenant, project, now, keep_ms)
  local old = now - keep_ms
  local function add(key, expire)
    redis.call('ZADD', key, now, id)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', old)
    if expire then redis.call('PEXPIRE', key, keep_ms) end
  end
  add(P .. 'index:all', false)
  add(P .. 'index:tenant:' .. tenant, true)
  if project ~= '' then add(P .. 'index:project:' .. project, true) end
  for _, state in ipairs(STATES) do
    redis.call('ZREMRANGEBYSCORE', P .. 'index:state:' .. state, '-inf', old)
  end
end
local function unindex(id, tenant, project, state)
  redis.call('ZREM', P .. 'index:all', id)
  if tenant and tenant ~= '' then redis.call('ZREM', P .. 'index:tenant:' .. tenant, id) end
  if project and project ~= '' then redis.call('ZREM', P .. 'index:project:' .. project, id) end
  for _, s in ipairs(STATES) do redis.call('ZREM', P .. 'index:state:' .. s, id) end
end
-- A lane for a tenant without one (the same rule as fair::choose_lane):
-- a lane 1.. no tenant holds, else the one with the fewest jobs waiting.
local function choose_lane(lanes)
  if lanes <= 1 then return 0 end
  local load = {}
  local held = redis.call('HGETALL', P .. 'fair:lanes')
  for i = 1, #held, 2 do
    local lane = tonumber(held[i + 1])
    load[lane] = (load[lane] or 0) + redis.call('ZCARD', P .. 'fair:waiting:' .. held[i])
  end
  local best, best_load = 1, nil
  for lane = 1, lanes - 1 do
    local waiting = load[lane]
    if waiting == nil then return lane end
    if best_load == nil or waiting < best_load then best, best_load = lane, waiting end
  end
  return best
end
-- Every tenant with jobs waiting or running (expired leases and claims
-- dropped, jobs whose status is gone dropped), as rows of
-- {tenant, queued, in flight, oldest wait ms, turn wait ms, lane of the oldest or ''}.
local function loads(now)
  local rows = {}
  for _, tenant in ipairs(redis.call('SMEMBERS', P .. 'fair:tenants')) do
    local waiting = P .. 'fair:waiting:' .. tenant
    local running = P .. 'fair:running:' .. tenant
    local claims = P .. 'fair:claims:' .. tenant
    redis.call('ZREMRANGEBYSCORE', running, '-inf', now)
    redis.call('ZREMRANGEBYSCORE', claims, '-inf', now)
    local queued = redis.call('ZCARD', waiting)
    local oldest_at, lane = nil, ''
    while queued > 0 do
      local first = redis.call('ZRANGE', waiting, 0, 0, 'WITHSCORES')
      local at = redis.call('HGET', P .. 'job:' .. first[1], 'lane')
      if at then
        oldest_at, lane = tonumber(first[2]), at
        break
      end
      redis.call('ZREM', waiting, first[1])
      queued = queued - 1
    end
    local active = redis.call('ZCARD', running)
    if queued == 0 and active == 0 then
      redis.call('SREM', P .. 'fair:tenants', tenant)
      redis.call('HDEL', P .. 'fair:lanes', tenant)
      redis.call('HDEL', P .. 'fair:served', tenant)
    else
      if queued == 0 then redis.call('HDEL', P .. 'fair:lanes', tenant) end
      local oldest_wait, turn_wait = 0, 0
      if oldest_at then
        local served = tonumber(redis.call('HGET', P .. 'fair:served', tenant) or '0')
        oldest_wait = math.max(0, now - oldest_at)
        turn_wait = math.max(0, now - math.max(oldest_at, served))
      end
      rows[#rows + 1] = {tenant, queued, active + redis.call('ZCARD', claims), oldest_wait, turn_wait, lane}
    end
  end
  return rows
end
-- The rows flattened into strings, for a script's reply.
local function flat(rows, out)
  for _, row in ipairs(rows) do
    for _, v in ipairs(row) do out[#out + 1] = tostring(v) end
  end
  return out
end
-- A job seen first by a worker (posted straight to the broker, or a store
-- that lost its data): give it the bookkeeping a create would have.
local function adopt(key, id, tenant, project, now, keep_ms)
  redis.call('HSET', key, 'published', '1', 'fp', '', 'tenant', tenant,
    'project', project, 'lane', 0, 'created_ms', now)
  index_new(id, tenant, project, now, keep_ms)
end
";

/// KEYS: job, tombstone. ARGV: doc, fingerprint, ttl s, tenant, max queued
/// per tenant, lanes, id, project ('' for none), pictures, keep ms.
/// Returns `{'erased'}`, `{'existing', doc, fp, published, done, failed,
/// lane, state}`, `{'quota', queued}` or `{'created', lane}`.
pub(super) const CREATE: &str = r"
if redis.call('EXISTS', KEYS[2]) == 1 then return {'erased'} end
if redis.call('EXISTS', KEYS[1]) == 1 then
  local f = redis.call('HMGET', KEYS[1], 'doc', 'fp', 'published', 'done', 'failed', 'lane', 'state')
  return {'existing', f[1] or '', f[2] or '', f[3] or '0', f[4] or '0', f[5] or '0', f[6] or '0', f[7] or ''}
end
local id, tenant, project = ARGV[7], ARGV[4], ARGV[8]
local waiting = P .. 'fair:waiting:' .. tenant
local queued = redis.call('ZCARD', waiting)
if queued >= tonumber(ARGV[5]) then return {'quota', tostring(queued)} end
local lane = redis.call('HGET', P .. 'fair:lanes', tenant)
if not lane then
  lane = choose_lane(tonumber(ARGV[6]))
  redis.call('HSET', P .. 'fair:lanes', tenant, lane)
end
local now = now_ms()
redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'state', 'queued', 'fp', ARGV[2], 'published', '0',
  'done', 0, 'failed', 0, 'tenant', tenant, 'project', project, 'lane', lane,
  'pictures', ARGV[9], 'created_ms', now)
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', waiting, now, id)
redis.call('SADD', P .. 'fair:tenants', tenant)
index_new(id, tenant, project, now, tonumber(ARGV[10]))
index_state(id, nil, 'queued', now)
redis.call('HINCRBY', P .. 'stats', 'entered:queued', 1)
return {'created', tostring(lane)}
";

/// KEYS: job. Notes the job published, if it still exists (an erased job
/// must not gain a stray record).
pub(super) const MARK_PUBLISHED: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'published', '1') end
return 1
";

/// KEYS: job, tombstone. ARGV: running doc, ttl s, tenant, id, project,
/// lease ms, keep ms, claim tenant and claim id ('' for none). Returns
/// `{'erased'}`, `{'final', doc}` or `{'started'}`.
pub(super) const BEGIN: &str = r"
if ARGV[8] ~= '' then redis.call('ZREM', P .. 'fair:claims:' .. ARGV[8], ARGV[9]) end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'erased'} end
local state = redis.call('HGET', KEYS[1], 'state')
if is_final(state) then return {'final', redis.call('HGET', KEYS[1], 'doc')} end
local id, tenant = ARGV[4], ARGV[3]
local now = now_ms()
redis.call('HSET', P .. 'fair:served', tenant, now)
redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'state', 'running', 'done', 0, 'failed', 0)
if not state then adopt(KEYS[1], id, tenant, ARGV[5], now, tonumber(ARGV[7])) end
redis.call('EXPIRE', KEYS[1], ARGV[2])
unledger(id, tenant)
redis.call('ZADD', P .. 'fair:running:' .. tenant, now + tonumber(ARGV[6]), id)
redis.call('SADD', P .. 'fair:tenants', tenant)
index_state(id, state, 'running', now)
redis.call('HINCRBY', P .. 'stats', 'entered:running', 1)
return {'started'}
";

/// KEYS: job, tombstone, contents. ARGV: done, failed, image bucket field,
/// image ms, content ('' for none).
pub(super) const PROGRESS: &str = r"
redis.call('HINCRBY', P .. 'stats', ARGV[3], 1)
redis.call('HINCRBY', P .. 'stats', 'image:sum_ms', ARGV[4])
redis.call('HINCRBY', P .. 'stats', 'image:count', 1)
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'running' then
  redis.call('HINCRBY', KEYS[1], 'done', ARGV[1])
  redis.call('HINCRBY', KEYS[1], 'failed', ARGV[2])
end
if ARGV[5] ~= '' and state then
  redis.call('SADD', KEYS[3], ARGV[5])
  local ttl = redis.call('TTL', KEYS[1])
  if ttl > 0 then redis.call('EXPIRE', KEYS[3], ttl) end
end
return 1
";

/// KEYS: job, tombstone. ARGV: final doc, final state, ttl s, job bucket
/// field, job ms, tenant, id, run ms ('' if it never started), project,
/// keep ms. Returns `{'erased'}` or `{'stored', doc}` (an earlier final doc
/// if there was one).
pub(super) const FINISH: &str = r"
if redis.call('EXISTS', KEYS[2]) == 1 then return {'erased'} end
local state = redis.call('HGET', KEYS[1], 'state')
if is_final(state) then return {'stored', redis.call('HGET', KEYS[1], 'doc')} end
local id, tenant = ARGV[7], ARGV[6]
local now = now_ms()
redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'state', ARGV[2])
if not state then adopt(KEYS[1], id, tenant, ARGV[9], now, tonumber(ARGV[10])) end
redis.call('EXPIRE', KEYS[1], ARGV[3])
unledger(id, tenant)
index_state(id, state, ARGV[2], now)
if ARGV[8] ~= '' then
  redis.call('LPUSH', P .. 'fair:runs', ARGV[8])
  redis.call('LTRIM', P .. 'fair:runs', 0, 49)
end
redis.call('HINCRBY', P .. 'stats', 'entered:' .. ARGV[2], 1)
redis.call('HINCRBY', P .. 'stats', ARGV[4], 1)
redis.call('HINCRBY', P .. 'stats', 'job:sum_ms', ARGV[5])
redis.call('HINCRBY', P .. 'stats', 'job:count', 1)
return {'stored', ARGV[1]}
";

/// KEYS: job, tombstone. ARGV: cancelled doc, ttl s, id. Returns
/// `not_found`, `cancelled`, `requested` or `final`.
pub(super) const CANCEL: &str = r"
if redis.call('EXISTS', KEYS[2]) == 1 then return 'not_found' end
local f = redis.call('HMGET', KEYS[1], 'state', 'tenant')
local state = f[1]
if not state then return 'not_found' end
if state == 'queued' then
  redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'state', 'cancelled')
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  unledger(ARGV[3], f[2])
  index_state(ARGV[3], 'queued', 'cancelled', now_ms())
  redis.call('HINCRBY', P .. 'stats', 'entered:cancelled', 1)
  return 'cancelled'
end
if state == 'running' then
  redis.call('HSET', KEYS[1], 'cancel', '1')
  return 'requested'
end
return 'final'
";

/// ARGV: tenant, id, lease ms. Extends a running job's lease if it is on the ledger.
pub(super) const RENEW: &str = r"
redis.call('ZADD', P .. 'fair:running:' .. ARGV[1], 'XX', now_ms() + tonumber(ARGV[3]), ARGV[2])
return 1
";

/// KEYS: job, tombstone. ARGV: tenant, id, lane. A running job's message
/// went back to `lane`: it waits again, in its original place.
pub(super) const HAND_BACK: &str = r"
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local tenant, id = ARGV[1], ARGV[2]
local f = redis.call('HMGET', KEYS[1], 'state', 'created_ms')
unledger(id, tenant)
if not f[1] or is_final(f[1]) then return 0 end
redis.call('HSET', KEYS[1], 'lane', ARGV[3])
redis.call('ZADD', P .. 'fair:waiting:' .. tenant, tonumber(f[2]) or now_ms(), id)
redis.call('SADD', P .. 'fair:tenants', tenant)
redis.call('HSETNX', P .. 'fair:lanes', tenant, ARGV[3])
return 1
";

/// Every tenant with jobs waiting or running: a flat list of rows (see
/// `loads` in [`PRELUDE`]).
pub(super) const LOADS: &str = r"
return flat(loads(now_ms()), {})
";

/// ARGV: claim id. The tenant whose job should start next (the same rule as
/// `fair::next_tenant`: least in flight, then the longest wait for a turn,
/// then the name) gets a claim on the slot; returns `{claimed tenant or '',
/// rows...}` (the rows as before the claim).
pub(super) const DISPATCH: &str = r"
local now = now_ms()
local rows = loads(now)
local best = nil
for _, row in ipairs(rows) do
  if row[2] > 0 and row[6] ~= '' then
    if best == nil or row[3] < best[3]
      or (row[3] == best[3] and (row[5] > best[5] or (row[5] == best[5] and row[1] < best[1]))) then
      best = row
    end
  end
end
local claimed = ''
if best then
  claimed = best[1]
  redis.call('ZADD', P .. 'fair:claims:' .. claimed, now + CLAIM_MS, ARGV[1])
end
return flat(rows, {claimed})
";

/// ARGV: tenant, claim id. A claim whose worker started no job.
pub(super) const RELEASE: &str = r"
redis.call('ZREM', P .. 'fair:claims:' .. ARGV[1], ARGV[2])
return 1
";

/// Whether any tenant has a job waiting (what idle workers ask often).
pub(super) const WORK_WAITING: &str = r"
for _, tenant in ipairs(redis.call('SMEMBERS', P .. 'fair:tenants')) do
  if redis.call('ZCARD', P .. 'fair:waiting:' .. tenant) > 0 then return 1 end
end
return 0
";

/// ARGV: id. The job's rank among its tenant's waiting jobs, or -1.
pub(super) const RANK: &str = r"
local tenant = redis.call('HGET', P .. 'job:' .. ARGV[1], 'tenant')
if not tenant then return -1 end
local rank = redis.call('ZRANK', P .. 'fair:waiting:' .. tenant, ARGV[1])
if not rank then return -1 end
return rank
";

/// KEYS: job, tombstone, contents. ARGV: tombstone ttl s, id. Marks the
/// job erased and takes it off the ledger; returns `{doc, pictures,
/// contents...}` or false when there is no such job.
pub(super) const ERASE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('SET', KEYS[2], '1', 'EX', ARGV[1])
local f = redis.call('HMGET', KEYS[1], 'doc', 'tenant', 'pictures')
redis.call('HSET', KEYS[1], 'cancel', '1')
unledger(ARGV[2], f[2])
local out = {f[1] or '', f[3] or ''}
for _, content in ipairs(redis.call('SMEMBERS', KEYS[3])) do out[#out + 1] = content end
return out
";

/// KEYS: job, contents. ARGV: id. Deletes the job's records (not its tombstone).
pub(super) const FORGET: &str = r"
local f = redis.call('HMGET', KEYS[1], 'tenant', 'project', 'state')
unledger(ARGV[1], f[1])
unindex(ARGV[1], f[1], f[2], f[3])
redis.call('DEL', KEYS[1], KEYS[2])
return 1
";

/// ARGV: index key, cursor score ('' for the first page), cursor id, page
/// size, most entries to examine, project filter, tenant filter, state
/// filter ('' for none). Walks the index newest first; entries of jobs that
/// are gone or erased are dropped on the way. Returns `{next score, next id,
/// ids...}` (next '' when the index has no more).
pub(super) const SEARCH: &str = r"
local key = ARGV[1]
local limit, scan = tonumber(ARGV[4]), tonumber(ARGV[5])
local fp, ft, fs = ARGV[6], ARGV[7], ARGV[8]
local start = 0
if ARGV[2] ~= '' then
  local rank = redis.call('ZREVRANK', key, ARGV[3])
  local score = redis.call('ZSCORE', key, ARGV[3])
  if rank and score and tonumber(score) == tonumber(ARGV[2]) then
    start = rank + 1
  else
    start = redis.call('ZCOUNT', key, '(' .. ARGV[2], '+inf')
  end
end
local found, examined, last_score, last_id = {}, 0, '', ''
while #found < limit and examined < scan do
  local batch = redis.call('ZREVRANGE', key, start, start + 99, 'WITHSCORES')
  if #batch == 0 then break end
  for i = 1, #batch, 2 do
    local id = batch[i]
    examined = examined + 1
    start = start + 1
    last_score, last_id = batch[i + 1], id
    local f = redis.call('HMGET', P .. 'job:' .. id, 'state', 'tenant', 'project')
    if not f[1] or redis.call('EXISTS', P .. 'erased:' .. id) == 1 then
      redis.call('ZREM', key, id)
      start = start - 1
    elseif (fp == '' or f[3] == fp) and (ft == '' or f[2] == ft) and (fs == '' or f[1] == fs) then
      found[#found + 1] = id
    end
    if #found >= limit or examined >= scan then break end
  end
end
if redis.call('ZCARD', key) <= start then last_score, last_id = '', '' end
local out = {last_score, last_id}
for _, id in ipairs(found) do out[#out + 1] = id end
return out
";

/// ARGV: since ms. Jobs queued and running now, and succeeded, failed and
/// cancelled since then.
pub(super) const RECENT: &str = r"
local s = P .. 'index:state:'
return {
  redis.call('ZCARD', s .. 'queued'),
  redis.call('ZCARD', s .. 'running'),
  redis.call('ZCOUNT', s .. 'succeeded', ARGV[1], '+inf'),
  redis.call('ZCOUNT', s .. 'failed', ARGV[1], '+inf'),
  redis.call('ZCOUNT', s .. 'cancelled', ARGV[1], '+inf'),
}
";
