#!/usr/bin/env bash
# Three Authly instances sharing one Redis and one SQLite file (DESIGN §8 distributed setup).
#
#   scripts/multi_instance.sh          start (ports BASE_PORT..BASE_PORT+2, default 8000-8002)
#   scripts/multi_instance.sh status   show what is running
#   scripts/multi_instance.sh stop     stop what `start` started (pid files), nothing else
#
# Environment:
#   BASE_PORT               first HTTP port (default 8000)
#   AUTHLY_REDIS_URL        use this Redis; when unset, a private redis-server is started on
#                           6380 if free, else on a free port (never the shared 6379), and
#                           `stop` stops it again
#   AUTHLY_ADMIN_PASSWORD   admin password; when unset one is generated and printed once
#   AUTHLY_*                anything else is passed to the instances as usual
#
# Every `start` uses a fresh directory (mktemp) for the SQLite file, the logs and the pid
# files; the state file ${STATE_DIR}/current points at it so `stop` finds it. Only one set
# per BASE_PORT can run at a time.
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE_PORT="${BASE_PORT:-8000}"
INSTANCES=3
STATE_DIR="${TMPDIR:-/tmp}/authly-multi-$(id -u)-${BASE_PORT}"
START_TIMEOUT=60  # seconds to wait for each /health
STOP_TIMEOUT=10   # seconds to wait for SIGTERM before SIGKILL

if [[ -x "$ROOT/.venv/bin/python" ]]; then
    PY="$ROOT/.venv/bin/python"
else
    PY="$(command -v python3)"
fi
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"

say() { printf '%s\n' "$*"; }
die() { printf 'multi_instance: %s\n' "$*" >&2; exit 1; }

# Socket checks shared with the tests and the Python scripts (tests/support/processes.py).
procs() { "$PY" "$ROOT/tests/support/processes.py" "$@"; }
port_free() { procs port-free "$1"; }    # exit 0 when nothing listens on 127.0.0.1:PORT
free_port() { procs free-port; }         # never the shared 6379
redis_ping() { procs redis-ping "$1"; }  # exit 0 when a Redis answers PONG on PORT

alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

pid_of() { [[ -f "$1" ]] && cat "$1" 2>/dev/null || true; }

# Stop one process from a pid file: SIGCONT (in case it is paused), SIGTERM, wait, SIGKILL.
stop_pidfile() {
    local file="$1" name="$2" pid waited=0
    pid="$(pid_of "$file")"
    if ! alive "$pid"; then
        rm -f "$file"
        return 0
    fi
    kill -CONT "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
    while alive "$pid" && (( waited < STOP_TIMEOUT * 10 )); do
        sleep 0.1
        waited=$((waited + 1))
    done
    if alive "$pid"; then
        say "  $name (pid $pid) ignored SIGTERM for ${STOP_TIMEOUT}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    say "  stopped $name (pid $pid)"
    rm -f "$file"
}

cmd_stop() {
    [[ -f "$STATE_DIR/current" ]] || die "nothing to stop (no $STATE_DIR/current; BASE_PORT=$BASE_PORT)"
    local run_dir
    run_dir="$(cat "$STATE_DIR/current")"
    say "stopping Authly instances started from $run_dir"
    local i
    for ((i = 0; i < INSTANCES; i++)); do
        stop_pidfile "$run_dir/authly-$((BASE_PORT + i)).pid" "authly :$((BASE_PORT + i))"
    done
    if [[ -f "$run_dir/redis.pid" ]]; then
        stop_pidfile "$run_dir/redis.pid" "redis-server :$(cat "$run_dir/redis.port")"
    fi
    rm -f "$STATE_DIR/current"
    rmdir "$STATE_DIR" 2>/dev/null || true
    say "logs and the SQLite file are kept in $run_dir (remove with: rm -rf '$run_dir')"
}

cmd_status() {
    [[ -f "$STATE_DIR/current" ]] || { say "not running (BASE_PORT=$BASE_PORT)"; return 0; }
    local run_dir pid i
    run_dir="$(cat "$STATE_DIR/current")"
    say "run dir: $run_dir"
    for ((i = 0; i < INSTANCES; i++)); do
        pid="$(pid_of "$run_dir/authly-$((BASE_PORT + i)).pid")"
        if alive "$pid"; then
            say "  authly http://127.0.0.1:$((BASE_PORT + i)) pid $pid running"
        else
            say "  authly http://127.0.0.1:$((BASE_PORT + i)) not running"
        fi
    done
    if [[ -f "$run_dir/redis.pid" ]]; then
        pid="$(pid_of "$run_dir/redis.pid")"
        if alive "$pid"; then state="running"; else state="not running"; fi
        say "  redis-server 127.0.0.1:$(cat "$run_dir/redis.port") pid $pid $state"
    fi
}

wait_health() {  # wait_health PORT PID LOG
    local port="$1" pid="$2" log="$3" deadline=$((SECONDS + START_TIMEOUT))
    while (( SECONDS < deadline )); do
        if ! alive "$pid"; then
            say "authly on :$port exited before answering /health; last log lines:" >&2
            tail -n 20 "$log" >&2 || true
            return 1
        fi
        if procs health "$port"; then
            return 0
        fi
        sleep 0.2
    done
    say "authly on :$port did not answer /health within ${START_TIMEOUT}s; last log lines:" >&2
    tail -n 20 "$log" >&2 || true
    return 1
}

abort() {  # stop whatever this start already started, then exit 1
    trap - ERR
    say "multi_instance: $*; stopping what was started" >&2
    cmd_stop >&2 || true
    exit 1
}

cmd_start() {
    if [[ -f "$STATE_DIR/current" ]]; then
        die "already started from $(cat "$STATE_DIR/current"); run '$0 stop' first (BASE_PORT=$BASE_PORT)"
    fi
    local i port
    for ((i = 0; i < INSTANCES; i++)); do
        port=$((BASE_PORT + i))
        port_free "$port" || die "port $port is in use; choose another range with BASE_PORT=..."
    done

    mkdir -p "$STATE_DIR"
    local run_dir
    run_dir="$(mktemp -d "${TMPDIR:-/tmp}/authly-multi.XXXXXX")"
    printf '%s\n' "$run_dir" >"$STATE_DIR/current"
    # From here on, a failure stops whatever was already started.
    trap 'abort "start failed (line $LINENO)"' ERR

    if [[ -z "${AUTHLY_REDIS_URL:-}" ]]; then
        command -v redis-server >/dev/null || die "redis-server not found (set AUTHLY_REDIS_URL or install it)"
        local rport=6380
        port_free "$rport" || rport="$(free_port)"
        printf '%s\n' "$rport" >"$run_dir/redis.port"
        redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no \
            --daemonize yes --pidfile "$run_dir/redis.pid" --logfile "$run_dir/redis.log" \
            --dir "$run_dir" >/dev/null
        local deadline=$((SECONDS + 10))
        until redis_ping "$rport"; do
            (( SECONDS < deadline )) || abort "redis-server did not answer; see $run_dir/redis.log"
            sleep 0.1
        done
        export AUTHLY_REDIS_URL="redis://127.0.0.1:$rport/0"
        say "started redis-server on 127.0.0.1:$rport (pid $(cat "$run_dir/redis.pid"))"
    fi

    export AUTHLY_REDIS_RATE_LIMIT="${AUTHLY_REDIS_RATE_LIMIT:-true}"
    export AUTHLY_REDIS_CACHE="${AUTHLY_REDIS_CACHE:-true}"
    export AUTHLY_REDIS_SESSION="${AUTHLY_REDIS_SESSION:-true}"
    export AUTHLY_DATABASE_URL="${AUTHLY_DATABASE_URL:-sqlite:///$run_dir/authly.db}"
    # One issuer for all instances: a token from any of them is accepted by each.
    export AUTHLY_ISSUER="${AUTHLY_ISSUER:-http://127.0.0.1:$BASE_PORT}"
    local generated=""
    if [[ -z "${AUTHLY_ADMIN_PASSWORD:-}" ]]; then
        AUTHLY_ADMIN_PASSWORD="$("$PY" -c 'import secrets; print(secrets.token_urlsafe(18))')"
        export AUTHLY_ADMIN_PASSWORD
        generated=1
    fi
    export AUTHLY_ADMIN_USERNAME="${AUTHLY_ADMIN_USERNAME:-admin}"

    local launcher=()
    if command -v setsid >/dev/null; then launcher=(setsid); fi
    for ((i = 0; i < INSTANCES; i++)); do
        port=$((BASE_PORT + i))
        (cd "$ROOT" && exec "${launcher[@]}" "$PY" -m authly serve --host 127.0.0.1 --port "$port" \
            </dev/null >"$run_dir/authly-$port.log" 2>&1) &
        printf '%s\n' "$!" >"$run_dir/authly-$port.pid"
    done
    for ((i = 0; i < INSTANCES; i++)); do
        port=$((BASE_PORT + i))
        wait_health "$port" "$(cat "$run_dir/authly-$port.pid")" "$run_dir/authly-$port.log" \
            || abort "authly on :$port did not start"
    done
    trap - ERR

    local masked
    masked="$(printf '%s' "$AUTHLY_REDIS_URL" | sed -E 's#(://[^:/@]*:)[^@]*@#\1***@#')"
    say ""
    say "Authly is running ($INSTANCES instances, shared Redis and SQLite):"
    for ((i = 0; i < INSTANCES; i++)); do
        port=$((BASE_PORT + i))
        say "  http://127.0.0.1:$port   pid $(cat "$run_dir/authly-$port.pid")   log $run_dir/authly-$port.log"
    done
    say "  issuer   $AUTHLY_ISSUER"
    say "  redis    $masked"
    say "  sqlite   $AUTHLY_DATABASE_URL"
    [[ -f "$run_dir/redis.log" ]] && say "  redis log $run_dir/redis.log"
    if [[ -n "$generated" ]]; then
        say ""
        say "  admin login: username '$AUTHLY_ADMIN_USERNAME', password '$AUTHLY_ADMIN_PASSWORD'"
        say "  (generated now and shown only this once; set AUTHLY_ADMIN_PASSWORD to choose it)"
    fi
    say ""
    say "Try:  curl -s http://127.0.0.1:$BASE_PORT/health"
    say "Stop: BASE_PORT=$BASE_PORT $ROOT/scripts/multi_instance.sh stop"
    say "      (or by hand: kill \$(cat $run_dir/*.pid))"
}

case "${1:-start}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    -h | --help | help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' ;;
    *) die "unknown command '$1' (use start, stop or status)" ;;
esac
