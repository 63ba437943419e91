#!/usr/bin/env bash
# Make sure the machine's Postgres (127.0.0.1:5432) and RabbitMQ
# (127.0.0.1:5672) answer, starting them the way this machine's image does
# when they do not. The tests need both; CI runs this before them.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port=$1 name=$2
  for _ in $(seq 1 60); do
    port_open "$port" && return 0
    sleep 1
  done
  echo "$name did not start listening on 127.0.0.1:$port" >&2
  return 1
}

if ! port_open 5432; then
  echo "starting Postgres"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
  wait_port 5432 Postgres
fi
if ! port_open 5672; then
  echo "starting RabbitMQ"
  rabbitmq-server -detached
  wait_port 5672 RabbitMQ
fi
