-- End a hold: release its seats, or (ARGV[3] == 'sell') convert them to sold legs.
-- KEYS: 1 holds hash, 2 sold hash, 3 the hold's hash, 4 the account's zset
-- ARGV: 1 hold id, 2 user id ('' = the system, no owner check), 3 'release' | 'sell'
local now = now_ms()
local hold = redis.call('HGETALL', KEYS[3])
if #hold == 0 then return {'missing'} end
local fields = {}
for i = 1, #hold, 2 do fields[hold[i]] = hold[i + 1] end
if ARGV[2] ~= '' and fields.user ~= ARGV[2] then return {'not_owner'} end

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
redis.call('DEL', KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[1] .. '|' .. #seats)
return {'ok', fields.seats, fields.mask, fields.class, tostring(now)}
