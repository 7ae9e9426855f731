-- End a hold: release its seats, or (ARGV[3] == 'sell') convert them to sold legs.
-- The hold's hash stays as a tombstone for a minute, so a replay gets the first answer again.
-- KEYS: 1 holds hash, 2 sold hash, 3 the hold's hash, 4 the account's zset
-- ARGV: 1 hold id, 2 user id ('' = the system, no owner check), 3 'release' | 'sell'
local now = now_ms()
local fields = read_hold(KEYS[3])
if not fields then return {'missing', ARGV[1]} end
if ARGV[2] ~= '' and fields.user ~= ARGV[2] then return {'not_owner', ARGV[1]} end
if fields.ended then
  if fields.ended == ARGV[3] then
    return {'ok', fields.seats, fields.mask, fields.class, fields.ended_at, ARGV[1]}
  end
  return {'ended_' .. fields.ended, ARGV[1]}
end
if tonumber(fields.expires) <= now then return {'missing', ARGV[1]} end

local mask = tonumber(fields.mask)
local seats = split(fields.seats)
for _, seat in ipairs(seats) do
  local kept = live_entries(KEYS[1], seat, now, 0, ARGV[1])
  store_entries(KEYS[1], seat, kept)
  if ARGV[3] == 'sell' then
    local sold = tonumber(redis.call('HGET', KEYS[2], seat) or '0')
    redis.call('HSET', KEYS[2], seat, bit.bor(sold, mask))
  end
end
redis.call('HSET', KEYS[3], 'ended', ARGV[3], 'ended_at', now)
redis.call('PEXPIRE', KEYS[3], TOMBSTONE_MS)
redis.call('ZREM', KEYS[4], ARGV[1] .. '|' .. #seats)
return {'ok', fields.seats, fields.mask, fields.class, tostring(now), ARGV[1]}
