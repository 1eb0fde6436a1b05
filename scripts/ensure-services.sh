#!/usr/bin/env bash
# Starts PostgreSQL and Redis when they are not answering (commands from shared/SERVICES.md), then waits for them.
# With NPC_HOST_REQUIRE_SERVICES=1 a service that cannot be started fails the run; otherwise the tests that need it skip.
set -u

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {
  local port=$1 name=$2
  for _ in $(seq 1 60); do
    answers "$port" && { echo "$name is up on 127.0.0.1:$port"; return 0; }
    sleep 0.5
  done
  echo "$name did not come up on 127.0.0.1:$port" >&2
  return 1
}

status=0
if ! answers 5432; then
  echo "starting PostgreSQL"
  if [ -d /etc/postgresql ]; then
    # With several versions installed, the newest (`ls` alone would put 9 after 16).
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start || true
  fi
  wait_for 5432 PostgreSQL || status=1
fi
if ! answers 6379; then
  echo "starting Redis"
  if command -v redis-server >/dev/null; then
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  fi
  wait_for 6379 Redis || status=1
fi
if [ "$status" -ne 0 ] && [ "${NPC_HOST_REQUIRE_SERVICES:-0}" = "1" ]; then
  echo "NPC_HOST_REQUIRE_SERVICES=1 and a service is missing" >&2
  exit 1
fi
exit 0
