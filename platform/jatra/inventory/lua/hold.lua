-- Take all requested seats for one segment, or none.
-- KEYS: 1 holds hash, 2 sold hash, 3 this hold's hash, 4 the account's zset of live holds, 5 the journey's
--       synced marker (all one journey)
-- ARGV: 1 hold id, 2 user id, 3 leg mask, 4 ttl ms, 5 max seats per account, 6 max live holds, 7 class,
--       8.. seat ids
-- No marker: this Redis does not know the journey's sales yet (a restart without persistence, a new
-- journey): a free-looking seat may be sold. The reaper replays them from Postgres and sets it.
if redis.call('EXISTS', KEYS[5]) == 0 then return {'resyncing'} end

local now = now_ms()
local hold_id, user, mask = ARGV[1], ARGV[2], tonumber(ARGV[3])
local ttl, max_seats, max_live = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local n = #ARGV - 7

-- A replay of a hold that already went through (the client lost the reply and retried): same answer.
local existing = read_hold(KEYS[3])
if existing then
  if existing.user == user and not existing.ended then
    return {'ok', existing.expires, existing.created, hold_id}
  end
  return {'conflict', unpack(split(existing.seats))}
end

redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
local live = redis.call('ZRANGE', KEYS[4], 0, -1)
local seats_held = 0
for _, member in ipairs(live) do seats_held = seats_held + tonumber(string.match(member, '|(%d+)$')) end
if #live + 1 > max_live then return {'limit_holds', tostring(#live)} end
if seats_held + n > max_seats then return {'limit_seats', tostring(seats_held)} end

local taken, kept_by_seat = {}, {}
for i = 1, n do
  local seat = ARGV[7 + i]
  local kept, busy = live_entries(KEYS[1], seat, now, mask, '')
  local sold = tonumber(redis.call('HGET', KEYS[2], seat) or '0')
  if busy or bit.band(sold, mask) ~= 0 then taken[#taken + 1] = seat end
  kept_by_seat[i] = kept
end
if #taken > 0 then
  table.insert(taken, 1, 'conflict')
  return taken
end

local expires = now + ttl
local entry = hold_id .. ':' .. ARGV[3] .. ':' .. expires
local seats = {}
for i = 1, n do
  local kept = kept_by_seat[i]
  kept[#kept + 1] = entry
  store_entries(KEYS[1], ARGV[7 + i], kept)
  seats[i] = ARGV[7 + i]
end
redis.call('HSET', KEYS[3], 'user', user, 'mask', ARGV[3], 'expires', expires, 'created', now,
  'class', ARGV[7], 'seats', table.concat(seats, ','))
redis.call('PEXPIREAT', KEYS[3], expires)
redis.call('ZADD', KEYS[4], expires, hold_id .. '|' .. n)
expire_with_last(KEYS[4])
return {'ok', tostring(expires), tostring(now), hold_id}
