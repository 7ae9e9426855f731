-- Put legs of seats back on sale (a confirmed booking was cancelled; Postgres dropped the sale).
-- Not while the journey has no synced marker: the reaper may be writing its sales back from a read made
-- before the cancellation, which would sell the legs again after this; the reaper's repair of flagged
-- cancellations (resold.lua), which runs after its resync, frees them instead.
-- KEYS: 1 sold hash, 2 synced marker   ARGV: 1 leg mask, 2.. seat ids
if redis.call('EXISTS', KEYS[2]) == 0 then return {'resyncing'} end
local mask = tonumber(ARGV[1])
for i = 2, #ARGV do
  local left = bit.band(tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0'), bit.bnot(mask))
  if left == 0 then redis.call('HDEL', KEYS[1], ARGV[i]) else redis.call('HSET', KEYS[1], ARGV[i], left) end
end
return {'ok'}
