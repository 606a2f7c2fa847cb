"""The fleet's server-side scripts: counting and deciding happen atomically inside Redis.

Each script reads Redis's own clock (``TIME``), so hosts' clocks never disagree about a
window. Layout under the namespace ``ns``:

- ``ns:win:<id>`` — ZSET of one workflow's failures in its window (member = the failure's
  unique id ``<host>/<writer>/<seq>``, score = server time in ms); ``ns:wf:<id>`` — HASH of
  the fleet's state of the workflow and the event that set it; ``ns:wfs`` — SET of ids;
- ``ns:global:win`` / ``ns:global:hosts`` — ZSETs of every counted failure and of the hosts
  that had one, in the global window; ``ns:global`` — HASH of the global state;
- ``ns:events`` — the STREAM every decision is appended to (trimmed to about ``maxlen``);
- ``ns:epoch`` — a token set by the first host that connects to an empty namespace: a host
  whose epoch is gone (``FLUSHALL``, a restart without persistence) reconnects and re-seeds;
- ``ns:hosts`` — HASH host -> last time it shipped (ms); ``ns:known`` — SET of the workflow ids
  hosts run (an operator's move of any other id is refused without ``create``);
  ``ns:probe:<id>`` — the probe lease; ``ns:rb:<id>`` — set while a regression rollback of the
  workflow was just published.

Invariants: a member is added with ``ZADD NX``, so a retried or timed-out batch that already
landed counts nothing twice; a decision is taken only when the state allows it (a workflow
quarantines once until it is released; the fleet pauses once until it is resumed) and is
appended to the stream in the same script, so every host learns it exactly once per event id.
"""

from __future__ import annotations

__all__ = ["LEASE", "OPERATOR", "RELEASE", "RESEED", "RESUME", "ROLLBACK", "SHIP"]

_PRELUDE = """
local ns = ARGV[1]
local host = ARGV[2]
local maxlen = ARGV[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local stream = ns .. ':events'
-- Is stream id a older than b? ('' or nil, an event never applied, is older than any.)
local function older(a, b)
  if a == nil or a == '' then return true end
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if not am or not bm then return false end
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
local function publish(kind, wf, target, rule, count, threshold, window, actor, message)
  local id = redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*',
    'kind', kind, 'host', host, 'wf', wf, 'target', target, 'rule', rule,
    'count', count, 'threshold', threshold, 'window', window, 'actor', actor,
    'message', message)
  local key = ns .. ':global'
  if wf ~= '' then
    key = ns .. ':wf:' .. wf
    redis.call('SADD', ns .. ':wfs', wf)
  end
  local state = target
  redis.call('HSET', key, 'state', state, 'event', id, 'kind', kind, 'host', host,
    'rule', rule, 'count', count, 'threshold', threshold, 'window', window,
    'actor', actor, 'message', message, 'ms', now)
  -- The last release of the workflow (its window reset): failures a host had before it
  -- applied this event are not counted after it.
  if kind == 'release' or (kind == 'operator' and (target == 'running' or target == 'degraded')) then
    redis.call('HSET', key, 'released', id)
  end
  return id
end
"""

#: Ship a batch of failures. ARGV: ns, host, maxlen, global threshold, global window (ms),
#: min hosts, items (JSON list of {m, w, wt, ww, ws, g, e, ge}: e / ge the last fleet event the
#: host had applied for the workflow / the global scope), workflow ids this host runs (JSON
#: list, added to ``ns:known``), the epoch the host connected in. Returns {added, global
#: added, ids}, or {-1, 0, {}} when the epoch changed (an emptied or flushed Redis).
SHIP = (
    _PRELUDE
    + """
if ARGV[9] ~= '' and redis.call('GET', ns .. ':epoch') ~= ARGV[9] then
  return {-1, 0, {}}
end
local gthr = tonumber(ARGV[4])
local gwin = tonumber(ARGV[5])
local minh = tonumber(ARGV[6])
local items = cjson.decode(ARGV[7])
redis.call('HSET', ns .. ':hosts', host, now)
for _, wf in ipairs(cjson.decode(ARGV[8])) do
  redis.call('SADD', ns .. ':known', wf)
end
local out = {}
local added = 0
local gadded = 0
local gkey = ns .. ':global:win'
local hkey = ns .. ':global:hosts'
local gresumed = redis.call('HGET', ns .. ':global', 'resumed')
for _, it in ipairs(items) do
  -- A failure the host had before it applied the workflow's last release (an operator's
  -- release, a probe's, a resume) is not counted after it: one host would not count it.
  local wh = redis.call('HMGET', ns .. ':wf:' .. it.w, 'released', 'resumed')
  local before = (wh[1] and older(it.e, wh[1])) or (wh[2] and older(it.ge, wh[2]))
  if it.wt > 0 and not before then
    local wkey = ns .. ':win:' .. it.w
    if redis.call('ZADD', wkey, 'NX', now, it.m) == 1 then
      added = added + 1
      redis.call('SADD', ns .. ':wfs', it.w)
      redis.call('ZREMRANGEBYSCORE', wkey, '-inf', now - it.ww)
      redis.call('PEXPIRE', wkey, it.ww)
      local st = redis.call('HGET', ns .. ':wf:' .. it.w, 'state')
      if (not st) or st == 'running' or st == 'degraded' then
        local n = redis.call('ZCARD', wkey)
        if n >= it.wt then
          table.insert(out, publish('quarantine', it.w, 'quarantined',
            'workflow.failure_window', n, it.wt, it.ws, '', ''))
        end
      end
    end
  end
  if it.g == 1 and not (gresumed and older(it.ge, gresumed))
      and redis.call('ZADD', gkey, 'NX', now, it.m) == 1 then
    gadded = gadded + 1
    redis.call('ZADD', hkey, now, host)
  end
end
if gadded > 0 then
  redis.call('ZREMRANGEBYSCORE', gkey, '-inf', now - gwin)
  redis.call('ZREMRANGEBYSCORE', hkey, '-inf', now - gwin)
  redis.call('PEXPIRE', gkey, gwin)
  redis.call('PEXPIRE', hkey, gwin)
  if redis.call('HGET', ns .. ':global', 'state') ~= 'paused' then
    local n = redis.call('ZCARD', gkey)
    local h = redis.call('ZCARD', hkey)
    if n >= gthr and h >= minh then
      table.insert(out, publish('pause', '', 'paused', 'global.failure_window', n, gthr,
        tostring(gwin / 1000), '', h .. ' hosts'))
    end
  end
end
return {added, gadded, out}
"""
)

#: A probe succeeded on this host: release the quarantine fleet-wide. ARGV: ns, host, maxlen,
#: workflow, target. Returns the event id, or false when the fleet had no quarantine.
RELEASE = (
    _PRELUDE
    + """
local wf = ARGV[4]
if redis.call('HGET', ns .. ':wf:' .. wf, 'state') ~= 'quarantined' then
  return false
end
redis.call('DEL', ns .. ':win:' .. wf, ns .. ':probe:' .. wf)
return publish('release', wf, ARGV[5], 'quarantine.probe', 1, 1, '', '',
  'the half-open probe succeeded')
"""
)

#: An operator moves one workflow on every host. ARGV: ns, host, maxlen, workflow, target,
#: actor, message, create ('1': a workflow no host has run may be moved). Refused as one
#: host refuses: ``!unknown`` for an id no host runs (without create), ``!same`` for a move
#: to the state the fleet holds. Returns the event id.
OPERATOR = (
    _PRELUDE
    + """
local wf = ARGV[4]
local target = ARGV[5]
local st = redis.call('HGET', ns .. ':wf:' .. wf, 'state')
if ARGV[8] ~= '1' and not st and redis.call('SISMEMBER', ns .. ':known', wf) == 0 then
  return '!unknown'
end
if st == target then
  return '!same'
end
if target == 'running' or target == 'degraded' then
  redis.call('DEL', ns .. ':win:' .. wf, ns .. ':probe:' .. wf)
end
return publish('operator', wf, target, 'operator', 0, 0, '', ARGV[6], ARGV[7])
"""
)

#: An operator resumes the fleet. ARGV: ns, host, maxlen, target, actor, message. As on one
#: host, every released workflow's window is emptied (the release edge resets it).
RESUME = (
    _PRELUDE
    + """
redis.call('DEL', ns .. ':global:win', ns .. ':global:hosts')
local id = publish('resume', '', ARGV[4], 'operator', 0, 0, '', ARGV[5], ARGV[6])
redis.call('HSET', ns .. ':global', 'resumed', id)
for _, wf in ipairs(redis.call('SMEMBERS', ns .. ':wfs')) do
  local key = ns .. ':wf:' .. wf
  if redis.call('HGET', key, 'state') == 'paused' then
    redis.call('HSET', key, 'state', ARGV[4], 'event', id, 'kind', 'resume', 'ms', now,
      'resumed', id)
    redis.call('DEL', ns .. ':win:' .. wf, ns .. ':probe:' .. wf)
  end
end
return id
"""
)

#: Take the probe lease of a workflow the fleet holds quarantined. ARGV: ns, host, maxlen,
#: workflow, ttl (ms), mode ('take': only when free; 'hold': extend one's own).
LEASE = (
    _PRELUDE
    + """
local wf = ARGV[4]
local key = ns .. ':probe:' .. wf
if ARGV[6] == 'hold' then
  if redis.call('GET', key) == host then
    return redis.call('PEXPIRE', key, ARGV[5])
  end
  return 0
end
if redis.call('HGET', ns .. ':wf:' .. wf, 'state') ~= 'quarantined' then
  return 0
end
if redis.call('SET', key, host, 'NX', 'PX', ARGV[5]) then
  return 1
end
return 0
"""
)

#: Re-seed states this host knows and the fleet lost (or never learned while the link was
#: down). ARGV: ns, host, maxlen, JSON list of {w, target, expect, rule, count, threshold,
#: ws}; ``w`` empty = the global pause. A state is written when the fleet has none, or still
#: has the event ``expect`` this host last applied. Returns the new event ids.
RESEED = (
    _PRELUDE
    + """
local out = {}
for _, it in ipairs(cjson.decode(ARGV[4])) do
  local key = ns .. ':global'
  if it.w ~= '' then key = ns .. ':wf:' .. it.w end
  local current = redis.call('HGET', key, 'event')
  local state = redis.call('HGET', key, 'state')
  if state ~= it.target and ((not current) or current == it.expect) then
    local kind = 'reseed'
    if it.w == '' then kind = 'pause' end
    table.insert(out, publish(kind, it.w, it.target, it.rule, it.count, it.threshold,
      it.ws, '', 'known to ' .. host .. ', missing in the fleet'))
  end
end
return out
"""
)

#: Roll one workflow back on every host with a store. ARGV: ns, host, maxlen, workflow, rule,
#: count, threshold, actor, message, dedupe (ms). A regression found on a host (rule other
#: than 'operator') is published once per dedupe period, and not while the fleet holds the
#: workflow quarantined or paused; an operator's rollback always is. A rollback is an event,
#: not a lasting state: every host leaves ROLLBACK by itself (restored: degraded), so the
#: fleet's state of the workflow becomes 'degraded' (its window keeps counting). Returns the
#: event id, or false when nothing was published.
ROLLBACK = (
    _PRELUDE
    + """
local wf = ARGV[4]
local key = ns .. ':wf:' .. wf
if ARGV[5] ~= 'operator' then
  local st = redis.call('HGET', key, 'state')
  if st == 'quarantined' or st == 'paused' then
    return false
  end
  if not redis.call('SET', ns .. ':rb:' .. wf, host, 'NX', 'PX', ARGV[10]) then
    return false
  end
end
local id = publish('rollback', wf, 'rollback', ARGV[5], ARGV[6], ARGV[7], '', ARGV[8], ARGV[9])
redis.call('HSET', key, 'state', 'degraded')
return id
"""
)
