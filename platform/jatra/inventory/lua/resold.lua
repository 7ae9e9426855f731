-- Put the legs of a cancelled booking's seats back on sale, keeping the legs Postgres has sold since (a
-- repair: the cancellation's own unsold call may have failed after its commit). Each seat's sold mask
-- becomes (what Redis has, less the cancelled legs) OR (the legs Postgres sells of it now).
-- KEYS: 1 sold hash   ARGV: 1 cancelled leg mask, then pairs: seat id, its sold mask in Postgres
local cancelled = tonumber(ARGV[1])
for i = 2, #ARGV, 2 do
  local now = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  local left = bit.bor(bit.band(now, bit.bnot(cancelled)), tonumber(ARGV[i + 1]))
  if left == 0 then redis.call('HDEL', KEYS[1], ARGV[i]) else redis.call('HSET', KEYS[1], ARGV[i], left) end
end
return {'ok'}
