-- Extend a live hold by one TTL, never past its creation time plus the bounded total.
-- KEYS: 1 holds hash, 2 the hold's hash, 3 the account's zset
-- ARGV: 1 hold id, 2 user id, 3 ttl ms, 4 max total ms
local now = now_ms()
local fields = read_hold(KEYS[2])
if not fields or fields.ended then return {'missing'} end
if fields.user ~= ARGV[2] then return {'not_owner'} end

local old = tonumber(fields.expires)
local new = math.min(now + tonumber(ARGV[3]), tonumber(fields.created) + tonumber(ARGV[4]))
if new <= old then return {'at_limit', tostring(old)} end

local entry = ARGV[1] .. ':' .. fields.mask .. ':' .. new
local seats = split(fields.seats)
for _, seat in ipairs(seats) do
  local kept = live_entries(KEYS[1], seat, now, 0, ARGV[1])
  kept[#kept + 1] = entry
  store_entries(KEYS[1], seat, kept)
end
redis.call('HSET', KEYS[2], 'expires', new)
redis.call('PEXPIREAT', KEYS[2], new)
redis.call('ZADD', KEYS[3], new, ARGV[1] .. '|' .. #seats)
expire_with_last(KEYS[3])
return {'ok', tostring(new), fields.class}
