-- Put legs of seats back on sale (a confirmed booking was cancelled; Postgres dropped the sale).
-- KEYS: 1 sold hash   ARGV: 1 leg mask, 2.. seat ids
local mask = tonumber(ARGV[1])
for i = 2, #ARGV do
  local left = bit.band(tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0'), bit.bnot(mask))
  if left == 0 then redis.call('HDEL', KEYS[1], ARGV[i]) else redis.call('HSET', KEYS[1], ARGV[i], left) end
end
return {'ok'}
