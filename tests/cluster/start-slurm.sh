#!/usr/bin/env bash
# A one-node SLURM cluster on this host for tests/test_cluster.py: slurmctld, slurmd and slurmdbd
# accounting on a private MariaDB, authenticated by a private munged. Debian bookworm, as root,
# no systemd. Everything lives under $DIR (configs, sockets, spool, logs, database) on its own ports,
# so a site's SLURM, munge or MariaDB on the same host is neither used nor touched.
#   bash start-slurm.sh install   # apt-get the Debian packages (SLURM 22.05) when one is missing
#   bash start-slurm.sh [start]   # start what is not running; prints `started NAME PID` per daemon
#   bash start-slurm.sh stop      # stop every daemon whose pid file is under $DIR, remove the link
# Clients find the config at /etc/slurm/slurm.conf, a link to $DIR/slurm.conf that start makes when
# there is none (`linked PATH`); SLURM_CONF is not enough: the jobstep plugin drops SLURM_* variables
# before its srun. A real slurm.conf there is left alone and start fails.
# Env: DIR (/tmp/mdshortcut-slurm), CPUS (CPUs the node declares; default nproc, the machine's own:
# more than the cores oversubscribes them), MEM_MB (85% of MemTotal), PORT (first of four ports, 16817).
set -euo pipefail

DIR=${DIR:-/tmp/mdshortcut-slurm}
PACKAGES="slurmctld slurmd slurm-client slurmdbd munge mariadb-server"
BINARIES="slurmctld slurmd sbatch slurmdbd munged mariadbd"
CPUS=${CPUS:-$(nproc)}
MEM_MB=${MEM_MB:-$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.85}' /proc/meminfo)}
PORT=${PORT:-16817}
HOST=$(hostname -s)
DAEMONS="slurmd slurmctld slurmdbd mariadbd munged"  # stop order
export SLURM_CONF=$DIR/slurm.conf
SITE_CONF=/etc/slurm/slurm.conf

pidfile() { echo "$DIR/run/$1.pid"; }
alive() {  # a zombie (PID 1 here may never reap a killed daemon) is not alive
    local f state; f=$(pidfile "$1")
    [ -s "$f" ] && state=$(cat "/proc/$(cat "$f")/stat" 2>/dev/null) && [[ ${state##*) } != Z* ]]
}
wait_for() {  # wait_for SECONDS WHAT COMMAND...: until COMMAND succeeds, or fail naming WHAT
    local n=$1 what=$2; shift 2
    for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
    echo "start-slurm.sh: $what did not come up within ${n}s; see $DIR/log/" >&2; exit 1
}
started() { echo "started $1 $(cat "$(pidfile "$1")")"; }

case "${1:-start}" in
install)
    missing=0; for b in $BINARIES; do command -v "$b" >/dev/null || missing=1; done
    [ $missing = 1 ] || exit 0
    [ "$(id -u)" = 0 ] || { echo "start-slurm.sh: installing SLURM needs root" >&2; exit 1; }
    apt-get update -q
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $PACKAGES
    exit 0 ;;
stop)
    for d in $DAEMONS; do
        if alive "$d"; then
            pid=$(cat "$(pidfile "$d")"); echo "stopping $d (pid $pid)"; kill "$pid"
            for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
        fi
    done
    if [ "$(readlink "$SITE_CONF")" = "$SLURM_CONF" ]; then rm "$SITE_CONF"; fi
    exit 0 ;;
start) ;;
*) echo "usage: start-slurm.sh [install|start|stop]" >&2; exit 2 ;;
esac

[ "$(id -u)" = 0 ] || { echo "start-slurm.sh: starting SLURM daemons needs root" >&2; exit 1; }
command -v slurmctld >/dev/null || { echo "start-slurm.sh: SLURM is not installed; run: bash $0 install" >&2; exit 1; }
mkdir -p "$DIR"/{run,log,spool/ctld,spool/d,db}
install -d -o munge -g munge -m 700 "$DIR/munge"  # munged refuses a key or socket others can reach
chmod 711 "$DIR/munge"                             # ...but SLURM must reach its socket
MUNGE_SOCKET=$DIR/munge/munge.socket

# --- configs (rewritten on every start; daemons already running keep theirs) ----------------------
# CPUs beyond the real cores oversubscribe the node: slurmd then needs config_overrides, or it
# drains the node for "Low socket*core*thread count"
OVERRIDES=""
[ "$CPUS" -gt "$(nproc)" ] && OVERRIDES="SlurmdParameters=config_overrides"
cat > "$DIR/slurm.conf" <<EOF
ClusterName=mdshortcut
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
StateSaveLocation=$DIR/spool/ctld
SlurmdSpoolDir=$DIR/spool/d
SlurmctldPidFile=$(pidfile slurmctld)
SlurmdPidFile=$(pidfile slurmd)
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$((PORT + 2))
AccountingStoragePass=$MUNGE_SOCKET  # with slurmdbd: the munge socket of its connections
AccountingStoreFlags=job_comment
JobCompType=jobcomp/none
InactiveLimit=0
KillWait=5
MinJobAge=300
Waittime=0
$OVERRIDES
# no GPU: no GresTypes/Gres (a job asking for --gpus is rejected, as on a CPU-only site)
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
DBPASS=mdshortcut-test
cat > "$DIR/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=localhost
DbdPort=$((PORT + 2))
SlurmUser=root
LogFile=$DIR/log/slurmdbd.log
PidFile=$(pidfile slurmdbd)
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$((PORT + 3))
StorageUser=slurm
StoragePass=$DBPASS
StorageLoc=slurm_acct_db
EOF
chmod 600 "$DIR/slurmdbd.conf"

if [ ! -e "$SITE_CONF" ]; then
    mkdir -p /etc/slurm && ln -s "$SLURM_CONF" "$SITE_CONF" && echo "linked $SITE_CONF"
elif [ "$(readlink "$SITE_CONF")" != "$SLURM_CONF" ]; then
    echo "start-slurm.sh: $SITE_CONF is a site's SLURM config; not replacing it" >&2; exit 1
fi

# --- munged -----------------------------------------------------------------------------------------
if ! alive munged; then
    [ -s "$DIR/munge/munge.key" ] || runuser -u munge -- mungekey --create --keyfile="$DIR/munge/munge.key"
    touch "$(pidfile munged)" && chown munge "$(pidfile munged)"
    runuser -u munge -- munged --socket="$MUNGE_SOCKET" --key-file="$DIR/munge/munge.key" \
        --pid-file="$(pidfile munged)" --log-file="$DIR/munge/munged.log" --seed-file="$DIR/munge/munged.seed"
    wait_for 10 munged test -s "$(pidfile munged)"
    started munged
fi
munge --socket="$MUNGE_SOCKET" -n | unmunge --socket="$MUNGE_SOCKET" >/dev/null

# --- MariaDB (its own data directory and port) -------------------------------------------------------
SQL=(mariadb --no-defaults --socket="$DIR/run/mysqld.sock" -u root)
if ! alive mariadbd; then
    [ -d "$DIR/db/mysql" ] || mariadb-install-db --no-defaults --user=root --datadir="$DIR/db" \
        --auth-root-authentication-method=socket >"$DIR/log/mariadb-install.log" 2>&1
    mariadbd --no-defaults --user=root --datadir="$DIR/db" --socket="$DIR/run/mysqld.sock" \
        --pid-file="$(pidfile mariadbd)" --bind-address=127.0.0.1 --port=$((PORT + 3)) \
        --log-error="$DIR/log/mariadb.log" &
    wait_for 60 MariaDB "${SQL[@]}" -e "SELECT 1"
    wait_for 10 MariaDB test -s "$(pidfile mariadbd)"
    started mariadbd
fi
"${SQL[@]}" <<EOF
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DBPASS';
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DBPASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
EOF

# --- slurmdbd, accounts ------------------------------------------------------------------------------
if ! alive slurmdbd; then
    slurmdbd
    wait_for 60 slurmdbd sacctmgr -n list cluster
    started slurmdbd
fi
sacctmgr -i -Q add cluster mdshortcut >/dev/null 2>&1 || true
sacctmgr -i -Q add account default Cluster=mdshortcut Description=default Organization=local >/dev/null 2>&1 || true
for u in root ${EXTRA_USERS:-}; do sacctmgr -i -Q add user "$u" DefaultAccount=default >/dev/null 2>&1 || true; done

# --- slurmctld, slurmd --------------------------------------------------------------------------------
if ! alive slurmctld; then
    # -c: forget the jobs of an earlier controller. Its daemons gone, their jobs died with them, yet
    # the state it saved recovers them as RUNNING, holding their CPUs for good (CI 2026-12-05: a
    # run killed with the session held a CPU; the test's training stayed PENDING 900 s)
    slurmctld -c
    wait_for 30 slurmctld sh -c "scontrol ping | grep -q UP"
    started slurmctld
fi
if ! alive slurmd; then
    slurmd
    wait_for 60 slurmd sh -c "sinfo -h -n '$HOST' -o %T | grep -Eq '^(idle|mixed|alloc)'"
    started slurmd
fi
