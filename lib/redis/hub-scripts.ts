// The Redis hub's two Lua scripts. Each runs atomically, in one round trip.
//
// Keys under the hub's prefix:
//   <prefix>epoch     names this Redis dataset; made anew when Redis lost its data, so an id from
//                     before is recognised as stale instead of being mistaken for a new position
//   <prefix>seq       the hub-wide counter: stream entry `<n>-0` is the n-th publish of the hub,
//                     whatever its topic, so one Last-Event-ID resumes several topics exactly
//   <prefix>meta      hash: `last:<topic>` the newest seq of a topic, `floor:<topic>` the newest
//                     seq trimmed or expired away (a cursor below it cannot be resumed exactly),
//                     `msg:<topic>` the newest message as JSON (for `hub.last()`)
//   <prefix>t:<topic> the topic's stream; entry field `d` holds the frame, encoded once, without id,
//                     field `t` when it was published (ms since the epoch)
import { RedisScript } from './script.js'

/**
 * KEYS: epoch, seq, meta, stream. ARGV: a fresh epoch (used if there is none), topic, frame,
 * history size, ttl ms (0: none), the time now (ms since the epoch, for the readers' lag), the
 * message as JSON (`''`: not kept). Returns `{ epoch, seq }`.
 */
export const publishScript = new RedisScript(`
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
end
local n = redis.call('INCR', KEYS[2])
local max = tonumber(ARGV[4])
if redis.call('EXISTS', KEYS[4]) == 0 then
  -- A topic that expired comes back: nothing of its first life can be replayed.
  local last = redis.call('HGET', KEYS[3], 'last:' .. ARGV[2])
  if last then redis.call('HSET', KEYS[3], 'floor:' .. ARGV[2], last) end
else
  local len = redis.call('XLEN', KEYS[4])
  if len >= max then
    local gone = redis.call('XRANGE', KEYS[4], '-', '+', 'COUNT', len - max + 1)
    local id = gone[#gone][1]
    redis.call('HSET', KEYS[3], 'floor:' .. ARGV[2], string.sub(id, 1, string.find(id, '-', 1, true) - 1))
  end
end
redis.call('XADD', KEYS[4], 'MAXLEN', max, n .. '-0', 'd', ARGV[3], 't', ARGV[6])
redis.call('HSET', KEYS[3], 'last:' .. ARGV[2], n)
if ARGV[7] ~= '' then redis.call('HSET', KEYS[3], 'msg:' .. ARGV[2], ARGV[7]) end
if tonumber(ARGV[5]) > 0 then redis.call('PEXPIRE', KEYS[4], ARGV[5]) end
return {epoch, n}
`)

/**
 * Where a new subscriber stands. KEYS: epoch, seq, meta, then one stream per topic. ARGV: a fresh
 * epoch, mode (`none`: no Last-Event-ID; `invalid`: one that is not ours; `cursor`), the cursor's
 * epoch and seq, `1` to send the whole history after a reset, then the topics.
 * Returns `{ epoch, seq, reason, entries of topic 1, entries of topic 2, ... }`: `seq` is the
 * counter now (everything at or below it is history for this subscriber), `reason` is `''` or why
 * the cursor cannot be resumed, and the entries are the replay (none when there is nothing to replay).
 */
export const joinScript = new RedisScript(`
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
end
local counter = tonumber(redis.call('GET', KEYS[2]) or '0')
local mode = ARGV[2]
local reason = ''
if mode == 'invalid' then
  reason = 'invalid'
elseif mode == 'cursor' then
  local cursor = tonumber(ARGV[4])
  if ARGV[3] ~= epoch then
    reason = 'epoch'
  elseif cursor > counter then
    reason = 'invalid'
  else
    for i = 4, #KEYS do
      local field = redis.call('EXISTS', KEYS[i]) == 1 and 'floor:' or 'last:'
      local floor = redis.call('HGET', KEYS[3], field .. ARGV[i + 2])
      if floor and tonumber(floor) > cursor then reason = 'expired' end
    end
  end
end
local out = {epoch, counter, reason}
local from = nil
if mode == 'cursor' and reason == '' then
  from = '(' .. ARGV[4] .. '-0'
elseif reason ~= '' and ARGV[5] == '1' then
  from = '-'
end
for i = 4, #KEYS do
  if from then out[#out + 1] = redis.call('XRANGE', KEYS[i], from, '+') else out[#out + 1] = {} end
end
return out
`)
