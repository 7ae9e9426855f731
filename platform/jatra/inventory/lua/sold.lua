-- Mark legs of seats sold without a hold (the hold expired while the payment was on its way; Postgres
-- already accepted the sale under its exclusion constraint). OR, so concurrent sales never lose bits.
-- KEYS: 1 sold hash   ARGV: 1 leg mask, 2.. seat ids
local mask = tonumber(ARGV[1])
for i = 2, #ARGV do
  local sold = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  redis.call('HSET', KEYS[1], ARGV[i], bit.bor(sold, mask))
end
return {'ok'}
