# Helpers shared by the scripts: start (and on a fresh Debian, install) the local services.
# Sourced, not run. Every function is idempotent.

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else echo "root rights are needed for: $*" >&2; return 1
    fi
}

apt_install() {
    echo "installing $* from the distribution's packages" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null 2>&1 || {
        as_root apt-get update -qq >/dev/null
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null
    }
}

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
    local secs=$1 what=$2; shift 2
    for _ in $(seq 1 $((secs * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
    echo "$what did not come up within ${secs}s" >&2; return 1
}

ensure_postgres() {
    if command -v pg_isready >/dev/null 2>&1 && pg_isready -h 127.0.0.1 -p 5432 -q; then return 0; fi
    if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then apt_install postgresql postgresql-client; fi
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    echo "starting PostgreSQL $version" >&2
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    wait_for 30 PostgreSQL pg_isready -h 127.0.0.1 -p 5432 -q
}

ensure_redis() {
    if command -v redis-cli >/dev/null 2>&1 && [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; then return 0; fi
    command -v redis-server >/dev/null 2>&1 || apt_install redis-server
    echo "starting Redis" >&2
    as_root redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
    wait_for 15 Redis sh -c '[ "$(redis-cli -h 127.0.0.1 -p 6379 ping)" = PONG ]'
}

# psql as the PostgreSQL superuser: over TCP when trusted, else through the local socket.
psql_admin() {
    if psql -h 127.0.0.1 -U postgres -d postgres -tAc 'SELECT 1' >/dev/null 2>&1; then
        psql -h 127.0.0.1 -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"
    else
        as_root runuser -u postgres -- psql -d postgres -v ON_ERROR_STOP=1 "$@"
    fi
}

# The application role (password login, may create databases for tests) and its database.
ensure_database() {
    local db=${1:-aisales}
    if ! psql_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'aisales'" | grep -q 1; then
        psql_admin -qc "CREATE ROLE aisales LOGIN PASSWORD 'aisales' CREATEDB" >/dev/null
    fi
    if ! psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
        psql_admin -qc "CREATE DATABASE $db OWNER aisales" >/dev/null
    fi
    # Lets the benchmarks start each round from a clean checkpoint (PostgreSQL 15+; harmless if older).
    psql_admin -qc "GRANT pg_checkpoint TO aisales" >/dev/null 2>&1 || true
}

ensure_chromium() {
    if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then return 0; fi
    apt_install chromium chromium-driver
}

# promtool (from Debian's prometheus package, unpacked only: no server is installed or started).
ensure_promtool() {
    if command -v promtool >/dev/null 2>&1; then PROMTOOL=$(command -v promtool); export PROMTOOL; return 0; fi
    local dir="${XDG_CACHE_HOME:-$HOME/.cache}/aisales/promtool"
    if [ ! -x "$dir/usr/bin/promtool" ]; then
        mkdir -p "$dir"
        (cd "$dir" && { apt-get download prometheus >/dev/null 2>&1 || { as_root apt-get update -qq >/dev/null; apt-get download prometheus >/dev/null; }; } \
            && dpkg -x prometheus_*.deb . && rm -f prometheus_*.deb)
    fi
    PROMTOOL="$dir/usr/bin/promtool"
    export PROMTOOL
}

require_cargo() {
    if ! command -v cargo >/dev/null 2>&1; then
        echo "cargo is not installed: install Rust 1.89 or newer with rustup (https://rustup.rs)" >&2; return 1
    fi
}

# What the tests and benchmarks need: cargo, PostgreSQL with the aisales role and database, Redis,
# and TEST_DATABASE_URL / TEST_REDIS_URL pointing at them (unless already set).
ensure_test_services() {
    require_cargo
    ensure_postgres
    ensure_redis
    ensure_database aisales
    export TEST_DATABASE_URL=${TEST_DATABASE_URL:-postgres://aisales:aisales@127.0.0.1:5432/postgres}
    export TEST_REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379/}
}
