"""The seat inventory: holds in Redis (Lua), sales in Postgres, hold states, segments and fares."""
