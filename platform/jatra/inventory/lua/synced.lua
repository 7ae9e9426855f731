-- Give a journey the sold legs Postgres records for it, then mark it synced, in one step: holds on it are
-- refused until the marker exists (hold.lua). OR, so a sale marked meanwhile by its own payment is kept.
-- KEYS: 1 sold hash, 2 synced marker   ARGV: 1 the marker's expiry (unix ms), 2.. seat id, leg mask pairs
for i = 2, #ARGV, 2 do
  local sold = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  redis.call('HSET', KEYS[1], ARGV[i], bit.bor(sold, tonumber(ARGV[i + 1])))
end
redis.call('SET', KEYS[2], '1', 'PXAT', ARGV[1])
return {'ok'}
