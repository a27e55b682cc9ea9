/**
 * The Redis store's atomic steps, as Lua scripts. Each runs alone on the server, so a check and
 * the write it guards are one step for every instance sharing the Redis (design invariant 2
 * across instances).
 *
 * Key layout under `base` = `<prefix>:{<site>}:` (the braces keep one site's keys in one cluster
 * hash slot):
 *   clock        counter: the logical clock; INCR on every invalidation (bump, patch, delete, clear)
 *   floor        every tag reads as bumped at least at this clock value (clear, forgotten records)
 *   bumps        sorted set: tag → clock value of its last bump
 *   stats        hash: bytes, entries (approximate: expiry and eviction are not subtracted)
 *   e:<key>      hash: s (seq), t (tags, "\n"-joined), l (links), b (estimated bytes), v (entry JSON); TTL
 *   t:<tag>      set of keys carrying the tag (TTL refreshed on add; losing it only costs memory)
 *   l:<link>     set of keys showing the link, for patchLinkName (same)
 *
 * Every invalidation publishes `{"seq":N,…}` on the site's channel in the same script, so message
 * order is clock order: near caches rely on it.
 *
 * Keys are built inside the scripts from `base` (ARGV[1]); the scripts pass `numkeys` 0. That is
 * fine on a standalone Redis or Sentinel; on a cluster all of a site's keys share one slot.
 */
import { luaScript } from "./redis-connection.ts";

/** Helpers shared by every script. ARGV[1] is `base`, ARGV[2] the invalidation channel. */
const PRELUDE = `
local base = ARGV[1]
local channel = ARGV[2]
local function num(n) return string.format('%.0f', n) end
local function split(s)
  local out = {}
  if not s or s == '' then return out end
  for part in string.gmatch(s, '[^\\n]+') do out[#out + 1] = part end
  return out
end
local function has(joined, item)
  return joined and string.find('\\n' .. joined .. '\\n', '\\n' .. item .. '\\n', 1, true) ~= nil
end
-- The clock starts at the server's time in microseconds, so when Redis loses its data it never
-- goes back; the floor starts there too, so nothing fetched before the loss can be stored after it.
local function clock()
  local c = redis.call('GET', base .. 'clock')
  if c then return tonumber(c) end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  redis.call('SET', base .. 'clock', num(now))
  redis.call('SET', base .. 'floor', num(now))
  redis.call('DEL', base .. 'bumps', base .. 'stats')
  redis.call('PUBLISH', channel, '{"seq":' .. num(now) .. ',"clear":true}')
  return now
end
local function tick()
  clock()
  return redis.call('INCR', base .. 'clock')
end
local function floor()
  return tonumber(redis.call('GET', base .. 'floor') or '0')
end
-- Was any of tags bumped after seq? (ZMSCORE in chunks: Lua's stack limits unpack.)
local function stale(tags, seq)
  if floor() > seq then return true end
  for i = 1, #tags, 500 do
    local scores = redis.call('ZMSCORE', base .. 'bumps', unpack(tags, i, math.min(i + 499, #tags)))
    for j = 1, #scores do
      if scores[j] and tonumber(scores[j]) > seq then return true end
    end
  end
  return false
end
local function remove(key)
  local k = base .. 'e:' .. key
  local f = redis.call('HMGET', k, 't', 'l', 'b')
  if redis.call('DEL', k) == 0 then return 0 end
  for _, tag in ipairs(split(f[1])) do redis.call('SREM', base .. 't:' .. tag, key) end
  for _, link in ipairs(split(f[2])) do redis.call('SREM', base .. 'l:' .. link, key) end
  redis.call('HINCRBY', base .. 'stats', 'bytes', -tonumber(f[3] or '0'))
  redis.call('HINCRBY', base .. 'stats', 'entries', -1)
  return 1
end
local function stats()
  local s = redis.call('HMGET', base .. 'stats', 'bytes', 'entries')
  return { tonumber(s[1] or '0'), tonumber(s[2] or '0') }
end
`;

/** → clock value. ARGV: base, channel. */
export const SEQ = luaScript(`${PRELUDE}
return clock()
`);

/**
 * A valid entry, or '' (dropping it if it was invalidated: an index set Redis evicted cannot make
 * a bumped entry live on). → { clock at read, entry JSON or '' }. ARGV: base, channel, key.
 */
export const GET = luaScript(`${PRELUDE}
local now = clock()
local key = ARGV[3]
local f = redis.call('HMGET', base .. 'e:' .. key, 's', 't', 'v')
if not f[3] then return { now, '' } end
if stale(split(f[2]), tonumber(f[1])) then
  remove(key)
  return { now, '' }
end
return { now, f[3] }
`);

/**
 * Store unless invalidated since seq or a newer entry holds the key. → { 1 stored / 0 refused,
 * clock, bytes, entries }. ARGV: base, channel, key, seq, tags, guardTags, links ("\n"-joined),
 * entry JSON, estimated bytes, ttl ms.
 */
export const SET_IF_FRESH = luaScript(`${PRELUDE}
local key, seq, tags, links = ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[7]
local ttl = tonumber(ARGV[10])
local now = clock()
if stale(split(tags), seq) or stale(split(ARGV[6]), seq) then
  local s = stats()
  return { 0, now, s[1], s[2] }
end
local k = base .. 'e:' .. key
local old = redis.call('HGET', k, 's')
if old and tonumber(old) > seq then
  local s = stats()
  return { 0, now, s[1], s[2] }
end
if old then remove(key) end
redis.call('HSET', k, 's', ARGV[4], 't', tags, 'l', links, 'b', ARGV[9], 'v', ARGV[8])
redis.call('PEXPIRE', k, ttl)
for _, tag in ipairs(split(tags)) do
  redis.call('SADD', base .. 't:' .. tag, key)
  redis.call('PEXPIRE', base .. 't:' .. tag, ttl)
end
for _, link in ipairs(split(links)) do
  redis.call('SADD', base .. 'l:' .. link, key)
  redis.call('PEXPIRE', base .. 'l:' .. link, ttl)
end
redis.call('HINCRBY', base .. 'stats', 'bytes', tonumber(ARGV[9]))
redis.call('HINCRBY', base .. 'stats', 'entries', 1)
local s = stats()
return { 1, now, s[1], s[2] }
`);

/**
 * Advance the clock, record the bump of each tag, drop entries carrying one, forget the oldest
 * half of the bump records past maxRecords (raising the floor: refuses fills, never allows a
 * stale one), publish. → { seq, bytes, entries }. ARGV: base, channel, maxRecords, tags
 * ("\n"-joined), tags as a JSON array.
 */
export const BUMP = luaScript(`${PRELUDE}
local seq = tick()
for _, tag in ipairs(split(ARGV[4])) do
  redis.call('ZADD', base .. 'bumps', seq, tag)
  local set = base .. 't:' .. tag
  for _, key in ipairs(redis.call('SMEMBERS', set)) do
    -- A set member may since hold an entry without this tag: leave that one alone.
    if has(redis.call('HGET', base .. 'e:' .. key, 't'), tag) then remove(key) end
  end
  redis.call('DEL', set)
end
local max = tonumber(ARGV[3])
local n = redis.call('ZCARD', base .. 'bumps')
if n > max then
  local popped = redis.call('ZPOPMIN', base .. 'bumps', n - math.floor(max / 2))
  local last = tonumber(popped[#popped])
  if last > floor() then redis.call('SET', base .. 'floor', num(last)) end
end
redis.call('PUBLISH', channel, '{"seq":' .. num(seq) .. ',"tags":' .. ARGV[5] .. '}')
local s = stats()
return { seq, s[1], s[2] }
`);

/** Drop one entry and tell near caches. → { dropped 0/1, bytes, entries }. ARGV: base, channel, key, key as JSON string. */
export const DELETE = luaScript(`${PRELUDE}
local dropped = remove(ARGV[3])
local seq = tick()
redis.call('PUBLISH', channel, '{"seq":' .. num(seq) .. ',"keys":[' .. ARGV[4] .. ']}')
local s = stats()
return { dropped, s[1], s[2] }
`);

/**
 * Drop every entry showing a link (the new name is unknown). → { count, bytes, entries }.
 * ARGV: base, channel, link, link as JSON string.
 */
export const DROP_LINKING = luaScript(`${PRELUDE}
local link = ARGV[3]
local count = 0
local set = base .. 'l:' .. link
for _, key in ipairs(redis.call('SMEMBERS', set)) do
  if has(redis.call('HGET', base .. 'e:' .. key, 'l'), link) then count = count + remove(key) end
end
redis.call('DEL', set)
local seq = tick()
redis.call('PUBLISH', channel, '{"seq":' .. num(seq) .. ',"links":[' .. ARGV[4] .. ']}')
local s = stats()
return { count, s[1], s[2] }
`);

/**
 * Replace an entry's JSON with a patched copy, only if it is still exactly the one read (else an
 * invalidation or a newer fill came first, and that one wins). TTL kept. → 1 replaced / 0 not.
 * ARGV: base, channel, key, expected JSON, new JSON, new bytes.
 */
export const REPLACE_IF_SAME = luaScript(`${PRELUDE}
local k = base .. 'e:' .. ARGV[3]
local f = redis.call('HMGET', k, 'v', 'b')
if f[1] ~= ARGV[4] then return 0 end
redis.call('HSET', k, 'v', ARGV[5], 'b', ARGV[6])
redis.call('HINCRBY', base .. 'stats', 'bytes', tonumber(ARGV[6]) - tonumber(f[2] or '0'))
return 1
`);

/** Tell near caches that entries showing a link were patched. → seq. ARGV: base, channel, link as JSON string. */
export const ANNOUNCE_PATCH = luaScript(`${PRELUDE}
local seq = tick()
redis.call('PUBLISH', channel, '{"seq":' .. num(seq) .. ',"links":[' .. ARGV[3] .. ']}')
return seq
`);

/**
 * Forget everything: raise the floor to a new clock value (so every stored entry reads invalid at
 * once and nothing fetched before may be stored), reset bump records and stats, publish. The
 * entries themselves are swept afterwards by SWEEP. → seq. ARGV: base, channel.
 */
export const CLEAR = luaScript(`${PRELUDE}
local seq = tick()
redis.call('SET', base .. 'floor', num(seq))
redis.call('DEL', base .. 'bumps', base .. 'stats')
redis.call('PUBLISH', channel, '{"seq":' .. num(seq) .. ',"clear":true}')
return seq
`);

/**
 * Delete the given redis keys (found by SCAN after a clear) that belong to before the floor:
 * entries with an older seq, and index sets (rebuilt by later fills; losing one costs only memory).
 * ARGV: base, channel, then full redis key names.
 */
export const SWEEP = luaScript(`${PRELUDE}
local fl = floor()
local entryPrefix = base .. 'e:'
for i = 3, #ARGV do
  local k = ARGV[i]
  if string.sub(k, 1, #entryPrefix) == entryPrefix then
    local s = redis.call('HGET', k, 's')
    if s and tonumber(s) < fl then redis.call('DEL', k) end
  else
    redis.call('DEL', k)
  end
end
return 0
`);
