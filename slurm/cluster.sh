#!/usr/bin/env bash
# cluster.sh - a real single-node SLURM cluster on one Debian 12 machine, for vaebench's tests
# and demos. Runs as root and needs no systemd. Job accounting (slurmdbd + a private MariaDB) is
# always on: submitit learns job states from `sacct`, and without accounting a cancelled job
# leaves `job.result()` waiting forever.
#
#   bash slurm/cluster.sh start    # install missing packages, configure, start, wait for idle, smoke job
#   source /tmp/slurm-single-node/env.sh   # exports SLURM_CONF for sbatch/squeue/sacct/submitit
#   bash slurm/cluster.sh status
#   bash slurm/cluster.sh stop     # cancel every job, then stop each daemon by its PID file
#   bash slurm/cluster.sh restart-controller   # stop and start slurmctld only (jobs keep running)
#
# Environment knobs:
#   SLURM_DIR=/tmp/slurm-single-node  configs, state, spool, logs and the database; `start` wipes it
#   CLUSTER_NAME=vaebench PARTITION=debug
#   SLURMCTLD_PORT=6817 SLURMD_PORT=6818 SLURMDBD_PORT=6819 DB_PORT=3306
#   READY_TIMEOUT=60                  seconds to wait for each daemon before giving up
#   SKIP_INSTALL=1                    do not call apt-get
#
# Every address is 127.0.0.1. Every daemon is detached from the caller's stdin/stdout/stderr, so
# a CI step that pipes this script's output (e.g. through tee) still ends.
set -euo pipefail

SLURM_DIR=${SLURM_DIR:-/tmp/slurm-single-node}
CLUSTER_NAME=${CLUSTER_NAME:-vaebench}
PARTITION=${PARTITION:-debug}
SLURMCTLD_PORT=${SLURMCTLD_PORT:-6817}
SLURMD_PORT=${SLURMD_PORT:-6818}
SLURMDBD_PORT=${SLURMDBD_PORT:-6819}
DB_PORT=${DB_PORT:-3306}
READY_TIMEOUT=${READY_TIMEOUT:-60}
SKIP_INSTALL=${SKIP_INSTALL:-0}

ETC=$SLURM_DIR/etc   # slurm.conf and slurmdbd.conf (slurmdbd reads the one beside $SLURM_CONF)
RUN=$SLURM_DIR/run   # one PID file per daemon we started
LOG=$SLURM_DIR/log
DB=$SLURM_DIR/mysql  # MariaDB datadir, socket, pid, log: owned by mysql, which mariadbd runs as
export SLURM_CONF=$ETC/slurm.conf
NODE=$(hostname -s)
PACKAGES="slurmctld slurmd slurm-client munge slurmdbd mariadb-server"

say() { printf '[cluster.sh %s] %s\n' "$(date +%T)" "$*" >&2; }
fail() { say "ERROR: $*"; exit 1; }

# wait_for SECONDS WHAT CMD... : retry CMD every 0.25 s until it succeeds, or fail after SECONDS.
wait_for() {
  local seconds=$1 what=$2; shift 2
  local deadline=$(( $(date +%s) + seconds ))
  until "$@" >/dev/null 2>&1; do
    (( $(date +%s) < deadline )) || fail "gave up after ${seconds}s waiting for $what (logs: $LOG)"
    sleep 0.25
  done
}

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# stop_daemon NAME : SIGTERM the PID in $RUN/NAME.pid, SIGKILL it if still there after 30 s.
stop_daemon() {
  local name=$1 file=$RUN/$1.pid pid
  if alive "$file"; then
    pid=$(cat "$file")
    kill -TERM "$pid"
    for _ in $(seq 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    if kill -0 "$pid" 2>/dev/null; then
      say "$name (pid $pid) still running 30 s after SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    say "stopped $name (pid $pid)"
  fi
  rm -f "$file"
}

install_packages() {
  [ "$SKIP_INSTALL" = 1 ] && return 0
  local missing="" p
  for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
  done
  [ -z "$missing" ] && return 0
  say "installing$missing (apt-get, --no-install-recommends)"
  # The packages' postinst scripts try to start their services; without systemd (and with the
  # image's policy-rc.d) that is refused, which is what we want: this script starts them.
  # --no-install-recommends: the metapackage route pulls ~40 unneeded packages (HDF5, ROCm...).
  apt-get update -qq >"$TMPDIR_LOGS/apt-update.log" 2>&1 \
    || fail "apt-get update failed, see $TMPDIR_LOGS/apt-update.log"
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing \
    >"$TMPDIR_LOGS/apt-install.log" 2>&1 || fail "apt-get install failed, see $TMPDIR_LOGS/apt-install.log"
}

start_munge() {
  # A munged that already answers (e.g. the system's) is reused and left running by `stop`.
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then say "munged already running; reusing it"; return; fi
  [ -s /etc/munge/munge.key ] || runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
  # Without systemd nobody creates /run/munge; munged refuses to run as root.
  install -d -o munge -g munge -m 0755 /run/munge
  runuser -u munge -- /usr/sbin/munged </dev/null >/dev/null 2>&1
  wait_for "$READY_TIMEOUT" munged sh -c 'munge -n | unmunge'
  cp /run/munge/munged.pid "$RUN/munged.pid"
}

write_slurm_conf() {
  # The hardware as slurmd sees it: "NodeName=vm CPUs=2 ... RealMemory=24105".
  local hw cpus mem
  hw=$(slurmd -C | head -1)
  cpus=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$hw")
  mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
  [ -n "$cpus" ] && [ -n "$mem" ] || fail "could not read CPUs/RealMemory from 'slurmd -C': $hw"
  # Claim 90 %: a node reporting less memory than configured is drained.
  mem=$(( mem * 90 / 100 ))
  cat >"$SLURM_CONF" <<EOF
ClusterName=$CLUSTER_NAME
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmctldPort=$SLURMCTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
# A requeued job may restart only cred_expire+1 s later (default 121 s); 5 is the smallest value
# SLURM accepts (smaller ones are logged as invalid and replaced by the default).
AuthInfo=cred_expire=5
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
# Track job processes through /proc: no cgroups or systemd needed.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
MailProg=/bin/true
ReturnToService=2
# Refuse at submission what can never run here (e.g. more CPUs than the node has); otherwise
# such a job pends forever and whoever waits on it hangs.
EnforcePartLimits=ALL
# Seconds between SIGTERM and SIGKILL when a job is cancelled or hits its time limit (default 30).
# submitit ignores SIGTERM, so a cancelled job would go on running for all of KillWait.
KillWait=1
# Schedule right away rather than every few seconds: tests submit many short jobs.
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_interval=2,bf_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
# Without a default, a job that names no memory gets the whole node and jobs run one at a time.
DefMemPerCPU=$(( mem / cpus ))
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$SLURMDBD_PORT
JobAcctGatherType=jobacct_gather/linux
# Enforce each job's memory request as a real cluster does (sampled every second): a job over
# it is killed and ends as OUT_OF_MEMORY.
JobAcctGatherParams=OverMemoryKill
JobAcctGatherFrequency=task=1
JobCompType=jobcomp/none
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

start_mariadb() {
  install -d -o mysql -g mysql -m 0755 "$DB"
  mariadb-install-db --no-defaults --datadir="$DB/data" --user=mysql \
    --auth-root-authentication-method=socket --skip-test-db >"$LOG/mariadb-install.log" 2>&1 \
    || fail "mariadb-install-db failed, see $LOG/mariadb-install.log"
  # mariadbd stays in the foreground: put it in its own session with every fd detached.
  setsid mariadbd --no-defaults --datadir="$DB/data" --user=mysql \
    --bind-address=127.0.0.1 --port="$DB_PORT" --skip-name-resolve \
    --socket="$DB/mysqld.sock" --pid-file="$DB/mysqld.pid" --log-error="$DB/mariadb.log" \
    --innodb-lock-wait-timeout=900 </dev/null >/dev/null 2>&1 &
  wait_for "$READY_TIMEOUT" mariadbd mariadb-admin --no-defaults -S "$DB/mysqld.sock" -u root ping
  cp "$DB/mysqld.pid" "$RUN/mariadbd.pid"
  DB_PASS=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
  # root uses the unix socket; slurmdbd connects over TCP (slurmdbd.conf has no socket option).
  mariadb --no-defaults -S "$DB/mysqld.sock" -u root -e "
    CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
    FLUSH PRIVILEGES;"
}

start_slurmdbd() {
  # slurmdbd refuses a config that others can read: create it 0600 before writing the password.
  install -m 0600 /dev/null "$ETC/slurmdbd.conf"
  cat >"$ETC/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=$NODE
DbdAddr=127.0.0.1
DbdPort=$SLURMDBD_PORT
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
LogFile=$LOG/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
EOF
  slurmdbd </dev/null >/dev/null 2>&1
  wait_for "$READY_TIMEOUT" slurmdbd sacctmgr -n list cluster
}

node_idle() { [ "$(sinfo -h -n "$NODE" -o %T 2>/dev/null)" = idle ]; }

start_slurm() {
  slurmctld </dev/null >/dev/null 2>&1
  wait_for "$READY_TIMEOUT" slurmctld sh -c 'scontrol ping | grep -q UP'
  slurmd -N "$NODE" </dev/null >/dev/null 2>&1
  wait_for "$READY_TIMEOUT" "node $NODE to become idle" node_idle
}

smoke_job() {
  local out=$SLURM_DIR/smoke jid
  mkdir -p "$out"
  # -o: a bare sbatch would write slurm-<id>.out into the current directory.
  jid=$(timeout "$READY_TIMEOUT" sbatch --parsable --wait -o "$out/%j.out" --wrap hostname) \
    || fail "smoke job did not complete within ${READY_TIMEOUT}s (logs: $LOG)"
  # The job record reaches the database asynchronously.
  wait_for "$READY_TIMEOUT" "job $jid to show as COMPLETED in sacct" \
    sh -c "sacct -n -X -P -j $jid -o State | grep -qx COMPLETED"
  say "smoke job $jid completed and is visible in sacct"
}

cmd_start() {
  [ "$(id -u)" = 0 ] || fail "must run as root (it installs packages and starts system daemons)"
  case $SLURM_DIR in /tmp/?*|/var/tmp/?*) ;; *) fail "SLURM_DIR=$SLURM_DIR: refusing to wipe a folder outside /tmp or /var/tmp";; esac
  local t0=$SECONDS name
  if alive "$RUN/slurmctld.pid" && node_idle; then
    say "already running (SLURM_CONF=$SLURM_CONF)"; return 0
  fi
  for name in slurmd slurmctld slurmdbd mariadbd munged; do
    alive "$RUN/$name.pid" && fail "$name from $SLURM_DIR runs but the cluster is not healthy; run '$0 stop' first"
  done
  TMPDIR_LOGS=$(mktemp -d)
  install_packages
  rm -rf "$SLURM_DIR"
  mkdir -p "$ETC" "$RUN" "$LOG" "$SLURM_DIR/state" "$SLURM_DIR/spool"
  start_munge
  # Every slurm client (sacctmgr probes slurmdbd) waits 60 s for a missing slurm.conf: write it first.
  write_slurm_conf
  start_mariadb
  start_slurmdbd
  start_slurm
  smoke_job
  printf 'export SLURM_CONF=%q\n' "$SLURM_CONF" >"$SLURM_DIR/env.sh"
  say "ready in $(( SECONDS - t0 )) s: node $NODE, partition $PARTITION. Clients: source $SLURM_DIR/env.sh"
}

cmd_stop() {
  # Stopping slurmd does not kill running jobs (their slurmstepd lives on): cancel them first.
  if alive "$RUN/slurmctld.pid"; then
    local ids; ids=$(squeue -h -o %A 2>/dev/null || true)
    # shellcheck disable=SC2086
    [ -z "$ids" ] || scancel $ids 2>/dev/null || true
    local deadline=$(( $(date +%s) + 30 ))
    while [ -n "$(squeue -h -o %A 2>/dev/null)" ] && (( $(date +%s) < deadline )); do sleep 0.5; done
    [ -z "$(squeue -h -o %A 2>/dev/null)" ] || say "WARNING: jobs still listed 30 s after scancel"
  fi
  local name
  for name in slurmd slurmctld slurmdbd mariadbd munged; do stop_daemon "$name"; done
  say "stopped (configs and logs kept in $SLURM_DIR)"
}

cmd_restart_controller() {
  # The controller's state (queued and running jobs) is in StateSaveLocation; running jobs live
  # on in slurmstepd and report to the new controller.
  stop_daemon slurmctld
  slurmctld </dev/null >/dev/null 2>&1
  wait_for "$READY_TIMEOUT" slurmctld sh -c 'scontrol ping | grep -q UP'
  say "slurmctld restarted"
}

cmd_status() {
  local name up=0
  for name in munged mariadbd slurmdbd slurmctld slurmd; do
    if alive "$RUN/$name.pid"; then echo "$name: running (pid $(cat "$RUN/$name.pid"))"; up=1
    else echo "$name: not running"; fi
  done
  [ "$up" = 1 ] && { timeout 10 sinfo 2>&1 || true; }
  alive "$RUN/slurmctld.pid" && node_idle
}

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  restart-controller) cmd_restart_controller ;;
  *) echo "usage: $0 start|stop|status|restart-controller" >&2; exit 2 ;;
esac
