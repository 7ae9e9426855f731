-- Shared by every hold script (prepended to each): server clock and the seat-entry codec.
-- A seat's entry in the journey's `holds` hash is "hold:mask:expiry_ms;hold:mask:expiry_ms;...".
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Live entries of one seat, without `skip_hold`; and whether any live one overlaps `mask`.
local function live_entries(holds_key, seat, now, mask, skip_hold)
  local kept, busy = {}, false
  local current = redis.call('HGET', holds_key, seat)
  if current then
    for h, m, e in string.gmatch(current, '([^:;]+):(%d+):(%d+)') do
      if tonumber(e) > now and h ~= skip_hold then
        kept[#kept + 1] = h .. ':' .. m .. ':' .. e
        if mask ~= 0 and bit.band(tonumber(m), mask) ~= 0 then busy = true end
      end
    end
  end
  return kept, busy
end

local function store_entries(holds_key, seat, kept)
  if #kept == 0 then
    redis.call('HDEL', holds_key, seat)
  else
    redis.call('HSET', holds_key, seat, table.concat(kept, ';'))
  end
end

-- A hold's own hash as a table (empty when the key is gone).
local function read_hold(hold_key)
  local raw = redis.call('HGETALL', hold_key)
  if #raw == 0 then return nil end
  local fields = {}
  for i = 1, #raw, 2 do fields[raw[i]] = raw[i + 1] end
  return fields
end

-- How long an ended hold's hash stays as a tombstone, so that a replayed release or sell (a client
-- retrying after a lost reply) gets the original answer instead of "missing".
local TOMBSTONE_MS = 60000

local function split(csv)
  local out = {}
  for item in string.gmatch(csv, '[^,]+') do out[#out + 1] = item end
  return out
end

-- Keep a key alive as long as its latest member: the account zset expires with its last hold.
local function expire_with_last(zset_key)
  local last = redis.call('ZRANGE', zset_key, -1, -1, 'WITHSCORES')
  if last[2] then redis.call('PEXPIREAT', zset_key, math.floor(tonumber(last[2]))) end
end
