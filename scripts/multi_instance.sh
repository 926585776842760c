#!/usr/bin/env bash
# Three Authly instances sharing one Redis and one store (DESIGN §8 distributed setup).
#
#   scripts/multi_instance.sh [start]      on one SQLite file; returns once they serve
#   scripts/multi_instance.sh --postgres   on a PostgreSQL server of its own and a
#                                          password-protected Redis; stays in the
#                                          foreground, Ctrl-C (or SIGTERM) stops it all
#   scripts/multi_instance.sh status       show what is running
#   scripts/multi_instance.sh stop         stop what `start` started (pid files), nothing else
#
# Options of start: --postgres (as above), --wait (stay in the foreground; the default
# with --postgres), --detach (return once serving; the default without it).
#
# Environment:
#   BASE_PORT               first HTTP port (default 8000)
#   AUTHLY_REDIS_URL        use this Redis; when unset, a private redis-server is started on
#                           6380 if free, else on a free port (never the shared 6379), and
#                           `stop` stops it again; with --postgres it gets a generated password
#   AUTHLY_ADMIN_PASSWORD   admin password; when unset one is generated and printed once
#   AUTHLY_*                anything else is passed to the instances as usual
#
# Every `start` uses a fresh directory (mktemp) for the SQLite file, the logs and the pid
# files; the state file ${STATE_DIR}/current points at it so `stop` finds it. Only one set
# per BASE_PORT can run at a time. With --postgres, PostgreSQL (tests/support/postgres.py:
# initdb into a fresh directory, pg_ctl on a free port, never the machine's 5432) keeps its
# data in a directory of its own, named in postgres.dir of the run directory.
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
                                         # (after AUTH with $REDISCLI_AUTH when set)
pg() { "$PY" "$ROOT/tests/support/postgres.py" "$@"; }  # start|stop|kill DIR

# A URL with its password replaced by *** (what is printed; the instances mask too).
mask() { printf '%s' "$1" | sed -E 's#(://[^:/@]*:)[^@]*@#\1***@#'; }

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
    local pg_dir=""
    if [[ -f "$run_dir/postgres.dir" ]]; then
        pg_dir="$(cat "$run_dir/postgres.dir")"
        if [[ -f "$pg_dir/data/postmaster.pid" ]]; then
            if pg stop "$pg_dir"; then
                say "  stopped PostgreSQL (data in $pg_dir)"
            else
                say "  could not stop PostgreSQL in $pg_dir; see $pg_dir/postgres.log"
            fi
        fi
    fi
    rm -f "$STATE_DIR/current"
    rmdir "$STATE_DIR" 2>/dev/null || true
    say "logs and the SQLite file are kept in $run_dir (remove with: rm -rf '$run_dir')"
    [[ -z "$pg_dir" ]] || say "PostgreSQL's data is kept in $pg_dir (remove with: rm -rf '$pg_dir')"
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
    local state
    if [[ -f "$run_dir/redis.pid" ]]; then
        pid="$(pid_of "$run_dir/redis.pid")"
        if alive "$pid"; then state="running"; else state="not running"; fi
        say "  redis-server 127.0.0.1:$(cat "$run_dir/redis.port") pid $pid $state"
    fi
    if [[ -f "$run_dir/postgres.dir" ]]; then
        local pg_dir
        pg_dir="$(cat "$run_dir/postgres.dir")"
        if [[ -f "$pg_dir/data/postmaster.pid" ]]; then state="running"; else state="not running"; fi
        say "  postgresql 127.0.0.1:$(cat "$pg_dir/port" 2>/dev/null || echo '?') $state (data $pg_dir)"
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

start_redis() {  # start_redis RUN_DIR [PASSWORD]: a private redis-server; sets AUTHLY_REDIS_URL
    local run_dir="$1" password="${2:-}"
    command -v redis-server >/dev/null || die "redis-server not found (set AUTHLY_REDIS_URL or install it)"
    local rport=6380
    port_free "$rport" || rport="$(free_port)"
    printf '%s\n' "$rport" >"$run_dir/redis.port"
    # The settings go in a file (mode 600), so a password never shows in `ps`.
    (
        umask 077
        {
            printf 'port %s\nbind 127.0.0.1\nsave ""\nappendonly no\n' "$rport"
            printf 'daemonize yes\npidfile %s\nlogfile %s\ndir %s\n' \
                "$run_dir/redis.pid" "$run_dir/redis.log" "$run_dir"
            [[ -z "$password" ]] || printf 'requirepass %s\n' "$password"
        } >"$run_dir/redis.conf"
    )
    redis-server "$run_dir/redis.conf" >/dev/null
    local deadline=$((SECONDS + 10))
    until REDISCLI_AUTH="$password" redis_ping "$rport"; do
        (( SECONDS < deadline )) || abort "redis-server did not answer; see $run_dir/redis.log"
        sleep 0.1
    done
    if [[ -n "$password" ]]; then
        export AUTHLY_REDIS_URL="redis://:$password@127.0.0.1:$rport/0"
    else
        export AUTHLY_REDIS_URL="redis://127.0.0.1:$rport/0"
    fi
    say "started redis-server on 127.0.0.1:$rport (pid $(cat "$run_dir/redis.pid"))${password:+, password protected}"
}

start_postgres() {  # start_postgres RUN_DIR: a private PostgreSQL; sets AUTHLY_DATABASE_URL
    local run_dir="$1" pg_dir url
    # Its own directory, not inside RUN_DIR: when root, PostgreSQL runs as the postgres
    # user (initdb refuses root), which must reach it; tests/support/postgres.py hands
    # the directory to that user.
    pg_dir="$(mktemp -d "${TMPDIR:-/tmp}/authly-multi-pg.XXXXXX")"
    printf '%s\n' "$pg_dir" >"$run_dir/postgres.dir"
    url="$(pg start "$pg_dir")" || abort "PostgreSQL did not start; see $pg_dir/postgres.log"
    # A database of the deployment's own (the URL travels in the environment, not argv).
    PG_ADMIN_URL="$url" "$PY" -c '
import os, psycopg
with psycopg.connect(os.environ["PG_ADMIN_URL"], autocommit=True) as conn:
    conn.execute("CREATE DATABASE authly")
' || abort "could not create the database; see $pg_dir/postgres.log"
    export AUTHLY_DATABASE_URL="${url%/*}/authly"
    say "started PostgreSQL on 127.0.0.1:$(cat "$pg_dir/port") (data and log in $pg_dir)"
}

# Stay in the foreground until Ctrl-C / SIGTERM (then stop everything) or until
# `multi_instance.sh stop` from elsewhere removes the state file.
wait_foreground() {
    local run_dir="$1"
    trap 'say ""; say "stopping (signal)"; trap - INT TERM; cmd_stop; exit 0' INT TERM
    local -A reported=()
    local i port pid
    while [[ -f "$STATE_DIR/current" && "$(cat "$STATE_DIR/current" 2>/dev/null)" == "$run_dir" ]]; do
        for ((i = 0; i < INSTANCES; i++)); do
            port=$((BASE_PORT + i))
            [[ -f "$run_dir/authly-$port.pid" ]] || continue  # being stopped
            pid="$(pid_of "$run_dir/authly-$port.pid")"
            if [[ -z "${reported[$port]:-}" ]] && ! alive "$pid"; then
                say "authly on :$port (pid $pid) has exited; see $run_dir/authly-$port.log"
                reported[$port]=1
            fi
        done
        sleep 1 &
        wait $! || true
    done
    trap - INT TERM
    say "stopped from elsewhere"
}

cmd_start() {
    local use_postgres="" foreground="" arg
    for arg in "$@"; do
        case "$arg" in
            --postgres) use_postgres=1 ;;
            --wait) foreground=1 ;;
            --detach) foreground=0 ;;
            *) die "unknown option '$arg' (use --postgres, --wait or --detach)" ;;
        esac
    done
    [[ -n "$foreground" ]] || foreground="${use_postgres:-0}"
    if [[ -n "$use_postgres" && -n "${AUTHLY_DATABASE_URL:-}" ]]; then
        die "--postgres starts its own PostgreSQL; unset AUTHLY_DATABASE_URL to use it"
    fi

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
    # ... and so does Ctrl-C while starting.
    trap 'abort "interrupted"' INT TERM

    if [[ -z "${AUTHLY_REDIS_URL:-}" ]]; then
        local redis_password=""
        if [[ -n "$use_postgres" ]]; then
            redis_password="$("$PY" -c 'import secrets; print(secrets.token_urlsafe(18))')"
        fi
        start_redis "$run_dir" "$redis_password"
    fi
    if [[ -n "$use_postgres" ]]; then
        start_postgres "$run_dir"
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
    # The first instance migrates the store; PostgreSQL takes an advisory lock for that,
    # SQLite its writer lock, so all three may start at once.
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
    trap - ERR INT TERM

    local store="SQLite" pg_dir=""
    [[ -z "$use_postgres" ]] || { store="PostgreSQL"; pg_dir="$(cat "$run_dir/postgres.dir")"; }
    say ""
    say "Authly is running ($INSTANCES instances, shared Redis and $store):"
    for ((i = 0; i < INSTANCES; i++)); do
        port=$((BASE_PORT + i))
        say "  http://127.0.0.1:$port   pid $(cat "$run_dir/authly-$port.pid")   log $run_dir/authly-$port.log"
    done
    say "  issuer   $AUTHLY_ISSUER"
    say "  redis    $(mask "$AUTHLY_REDIS_URL")"
    say "  store    $(mask "$AUTHLY_DATABASE_URL")"
    [[ -f "$run_dir/redis.log" ]] && say "  redis log $run_dir/redis.log"
    if [[ -n "$pg_dir" ]]; then
        say "  postgres log $pg_dir/postgres.log"
        say "  crash the database:  $PY $ROOT/tests/support/postgres.py kill $pg_dir"
        say "  and bring it back:   $PY $ROOT/tests/support/postgres.py start $pg_dir >/dev/null"
    fi
    if [[ -n "$generated" ]]; then
        say ""
        say "  admin login: username '$AUTHLY_ADMIN_USERNAME', password '$AUTHLY_ADMIN_PASSWORD'"
        say "  (generated now and shown only this once; set AUTHLY_ADMIN_PASSWORD to choose it)"
    fi
    say ""
    say "Try:  curl -s http://127.0.0.1:$BASE_PORT/health"
    if [[ "$foreground" == 1 ]]; then
        say "Stop: Ctrl-C (or BASE_PORT=$BASE_PORT $ROOT/scripts/multi_instance.sh stop)"
        wait_foreground "$run_dir"
    else
        say "Stop: BASE_PORT=$BASE_PORT $ROOT/scripts/multi_instance.sh stop"
        say "      (or by hand: kill \$(cat $run_dir/*.pid))"
    fi
}

case "${1:-start}" in
    -h | --help | help) sed -n '2,/^[^#]/{/^#/p}' "$0" | sed 's/^# \{0,1\}//' ;;
    start) shift $(($# > 0 ? 1 : 0)); cmd_start "$@" ;;
    --*) cmd_start "$@" ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) die "unknown command '$1' (use start, stop or status)" ;;
esac
