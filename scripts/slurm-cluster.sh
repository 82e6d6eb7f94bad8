#!/usr/bin/env bash
# A real multi-node Slurm 22.05 cluster on this one machine, for the test suite (and for trying the
# Slurm executor by hand). Debian 12, run as root; no registry needed (images come from Debian's mirror).
#
#   hpcflow-slurm-ctl   hostname slurmctl, 10.79.0.2      slurmctld + munged
#   hpcflow-slurm-n<i>  hostname n<i>,     10.79.0.1<i>   slurmd + munged, with the host's docker
#                                                         socket and CLI (jobs start containers that
#                                                         join the node's namespaces)
#   n1..n<N> form the default partition `debug`; one more node, n<N+1> (n4), is alone in partition
#   `faults`: fault-injection tests take it down or drain it without touching anyone's jobs (no job
#   lands there unless it asks for `--partition=faults`).
#   this machine        the login node: slurm-client (sbatch/srun/squeue/sacct/...) with SLURM_CONF,
#                       its own munged with the cluster key, MariaDB + slurmdbd (accounting, sacct)
#
# Every node is a Docker container on the --internal network hpcflow-slurm (10.79.0.0/24; the host
# keeps the gateway 10.79.0.1). $RUN (config, key, state, spool, TmpFS, logs) and $SHARED (the "NFS
# home": job directories live under it) are mounted at the SAME path in every node.
#
# Usage: bash scripts/slurm-cluster.sh up|down|env|status
#   up      idempotent: installs, builds and starts only what is missing; restarts the containers only
#           when the configuration or the node image changed. A no-op on a healthy cluster.
#   down    removes what `up` started: the containers (by ID, via their label), the network, and the
#           host daemons (by their pid files). `down --purge` also deletes $RUN and $SHARED.
#           The packages and the images stay (they are a cache).
#   env     prints `export SLURM_CONF=...` (eval "$(bash scripts/slurm-cluster.sh env)")
#   status  what runs; exit 0 when the cluster answers and all its `debug` nodes are up.
#
# Env: HPCFLOW_SLURM_NODES (3: nodes of `debug`), HPCFLOW_SLURM_RUN (/tmp/hpcflow-slurm/run),
#      HPCFLOW_SLURM_SHARED (/tmp/hpcflow-slurm/shared), HPCFLOW_DEBIAN_MIRROR (image build),
#      HPCFLOW_SLURM_WAIT_SEC (180: how long to wait for daemons and nodes; the machine may be loaded).
#
# munge: the cluster uses its own munge socket (AuthInfo=socket=..., below) and its own key, so the
# machine's munged and /etc/munge/munge.key, if any, are never touched.
set -euo pipefail

cmd="${1:-}"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

N="${HPCFLOW_SLURM_NODES:-3}"
RUN="${HPCFLOW_SLURM_RUN:-/tmp/hpcflow-slurm/run}"
SHARED="${HPCFLOW_SLURM_SHARED:-/tmp/hpcflow-slurm/shared}"
WAIT_SEC="${HPCFLOW_SLURM_WAIT_SEC:-180}"
CONF="$RUN/etc/slurm.conf"
CLUSTER=hpcflow
PREFIX=hpcflow-slurm                  # container names, network name, label key
NETNAME=hpcflow-slurm
NET=10.79.0
LABEL="$PREFIX=ci"
BASE_IMG=hpcflow/debian:bookworm
NODE_IMG=hpcflow-test/slurm-node:22.05
# One path, valid on the host and (container-local) in every node: slurm.conf names it for all.
MUNGE_SOCK=/run/hpcflow-slurm-munge/munge.socket.2
MUNGE_HOST="$RUN/munge-host"          # the login node's munged: key copy, pid, seed, log (owner munge)
DB="$RUN/db"                          # MariaDB data + slurmdbd pid/log
DB_PORT=3307                          # MariaDB on 127.0.0.1 only
LOCK="${TMPDIR:-/tmp}/hpcflow-slurm-cluster.lock"

T0=$(date +%s%N)
say() {
  local ms=$((($(date +%s%N) - T0) / 1000000))
  printf 'slurm-cluster: [%3d.%ds] %s\n' $((ms / 1000)) $(((ms % 1000) / 100)) "$*" >&2
}
die() { say "ERROR: $*"; exit 1; }

usage() { echo "usage: bash scripts/slurm-cluster.sh up|down [--purge]|env|status" >&2; exit 2; }

[[ "$N" =~ ^[1-9][0-9]?$ ]] && [ "$N" -le 98 ] || die "HPCFLOW_SLURM_NODES must be 1..98 (got '$N')"
# The nodes of the default partition `debug` are n1..n$N; FAULT_NODE is alone in partition `faults`.
TOTAL=$((N + 1))
FAULT_NODE="n$TOTAL"
FAULT_PARTITION=faults

# Every node, the fault node last.
node_names() { local i; for ((i = 1; i <= TOTAL; i++)); do printf 'n%d\n' "$i"; done; }

# Process $1 runs (not a zombie waiting for its parent) and is command $2.
proc_alive() { # pid comm
  local stat
  [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] || return 1
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# Alive and really the daemon we started (a pid file can outlive its process and the pid be reused).
pid_alive() { # pidfile comm
  local p
  [ -s "$1" ] || return 1
  p=$(cat "$1" 2>/dev/null) || return 1
  [[ "$p" =~ ^[0-9]+$ ]] || return 1
  proc_alive "$p" "$2"
}

stop_pidfile() { # pidfile comm
  local f=$1 comm=$2 p i
  if pid_alive "$f" "$comm"; then
    p=$(cat "$f")
    kill -TERM "$p" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
      proc_alive "$p" "$comm" || break
      sleep 0.1
    done
    if proc_alive "$p" "$comm"; then kill -KILL "$p" 2>/dev/null || true; fi
    say "stopped $comm (pid $p)"
  fi
  rm -f "$f"
}

# Poll `cmd...` every 0.2 s for up to $1 seconds.
poll() { # seconds cmd...
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

cluster_env() { export SLURM_CONF="$CONF"; }

# new file -> file; returns 1 when the content changed (0: unchanged, the new file is dropped)
replace_if_changed() {
  if cmp -s "$1" "$2"; then rm -f "$1"; return 0; fi
  mv "$1" "$2"
  return 1
}

container_names() { echo "$PREFIX-ctl"; node_names | sed "s/^/$PREFIX-/"; }

# Like poll, for the cluster's daemons: gives up at once (with the container's log) when a node
# container has exited, instead of waiting out the timeout.
wait_cluster() { # seconds what cmd...
  local deadline=$((SECONDS + $1)) what=$2 c running
  shift 2
  until "$@" >/dev/null 2>&1; do
    running=$(container_names | xargs docker inspect -f '{{.Name}} {{.State.Running}}' 2>&1 || true)
    c=$(printf '%s\n' "$running" | awk '$2 != "true" { sub("^/", "", $1); print $1; exit }')
    if [ -n "$c" ]; then
      docker logs --tail 30 "$c" >&2 2>&1 || true
      die "container $c is not running (its log is above; $RUN/log has the daemons' logs) while waiting for $what"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 20 "$RUN/log/slurmctld.log" >&2 2>/dev/null || true
      die "timed out after $1 s waiting for $what"
    fi
    sleep 0.2
  done
}

# every node idle and responding (sinfo's short state exactly "idle", not "idle*"), the fault node too
all_idle() { [ "$(sinfo -h -N -o '%N %t' 2>/dev/null | sort -u | grep -c ' idle$')" = "$TOTAL" ]; }

# Healthy enough for a no-op: the controller answers and no node of `debug` is down, drained or not
# responding. The fault node is left out: a fault test may have it down or drained on purpose.
nodes_up() {
  local states
  states=$(sinfo -h -N -p debug -o '%N %t' 2>/dev/null | sort -u) || return 1
  [ "$(printf '%s\n' "$states" | grep -c .)" = "$N" ] || return 1
  ! printf '%s\n' "$states" | grep -qvE ' (idle|alloc|mix|comp)$'
}

# ------------------------------------------------------------------------------------------------
do_env() { printf 'export SLURM_CONF=%s\n' "$CONF"; }

# ------------------------------------------------------------------------------------------------
do_status() {
  local ok=0
  echo "containers (label $LABEL):"
  docker ps -a --filter "label=$LABEL" --format '  {{.Names}}  {{.Status}}  {{.Image}}' 2>/dev/null || ok=1
  echo "host daemons:"
  local f comm
  while read -r f comm; do
    if pid_alive "$f" "$comm"; then echo "  $comm pid $(cat "$f")"; else echo "  $comm not running"; ok=1; fi
  done <<EOF
$MUNGE_HOST/munged.pid munged
$DB/mysqld.pid mariadbd
$DB/slurmdbd.pid slurmdbd
EOF
  [ -f "$CONF" ] || { echo "no $CONF: the cluster was never brought up"; return 1; }
  cluster_env
  if scontrol ping >/dev/null 2>&1; then
    sinfo || true
    squeue || true
    nodes_up || ok=1
  else
    echo "slurmctld does not answer"; ok=1
  fi
  return "$ok"
}

# ------------------------------------------------------------------------------------------------
do_down() {
  local purge=0
  [ "${1:-}" = "--purge" ] && purge=1
  [ "$(id -u)" = 0 ] || die "run as root"
  exec 8>"$LOCK"
  flock 8
  if docker info >/dev/null 2>&1; then
    local -a ids leftovers=()
    local names c mode
    mapfile -t ids < <(docker ps -aq --no-trunc --filter "label=$LABEL")
    if [ "${#ids[@]}" -gt 0 ]; then
      names=" $(docker inspect -f '{{.Name}}' "${ids[@]}" | sed 's,^/,,' | tr '\n' ' ')"
      # Containers a cancelled job left on a node (joined to its namespaces): useless without it.
      while read -r c mode; do
        case "$mode" in
          container:*)
            mode=${mode#container:}
            if [[ "$names" == *" $mode "* ]] || [[ " ${ids[*]} " == *" $mode"* ]]; then leftovers+=("$c"); fi ;;
        esac
      done < <(docker ps -aq --no-trunc | xargs -r docker inspect -f '{{.Id}} {{.HostConfig.NetworkMode}}' 2>/dev/null)
      if [ "${#leftovers[@]}" -gt 0 ]; then
        docker rm -f "${leftovers[@]}" >/dev/null 2>&1 || true
        say "removed ${#leftovers[@]} container(s) that jobs left on the nodes"
      fi
      # SIGTERM first (forwarded by docker-init): slurmctld saves its state. `docker rm -f` alone is a
      # SIGKILL, after which the controller would recover finished jobs as still running.
      docker stop -t 15 "${ids[@]}" >/dev/null 2>&1 || true
      docker rm -f "${ids[@]}" >/dev/null 2>&1 || true
      say "removed containers:$names"
    fi
    if docker network inspect "$NETNAME" >/dev/null 2>&1; then
      docker network rm "$NETNAME" >/dev/null
      say "removed network $NETNAME"
    fi
  fi
  stop_pidfile "$DB/slurmdbd.pid" slurmdbd
  stop_pidfile "$DB/mysqld.pid" mariadbd
  stop_pidfile "$MUNGE_HOST/munged.pid" munged
  rm -rf "$(dirname "$MUNGE_SOCK")"
  if [ "$purge" = 1 ]; then
    rm -rf "$RUN" "$SHARED"
    rmdir "$(dirname "$RUN")" "$(dirname "$SHARED")" 2>/dev/null || true
    say "removed $RUN and $SHARED"
  fi
  say "down"
}

# ------------------------------------------------------------------------------------------------
install_packages() {
  # libpmix-dev: srun loads the mpi/pmix plugin on the login node too (`srun --mpi=pmix`), and the
  # plugin dlopen()s the unversioned libpmix.so that only the -dev package ships
  local p
  local -a need=()
  for p in slurm-client munge slurmdbd mariadb-server libpmix-dev; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
  done
  [ "${#need[@]}" -gt 0 ] || return 0
  say "installing (apt): ${need[*]}"
  local log policy_added=0
  log=$(mktemp "${TMPDIR:-/tmp}/hpcflow-slurm-apt.XXXXXX.log")
  # The cluster starts its own daemons; keep the packages' postinst from starting system services
  # (a machine-wide munged, mariadbd, ...) that nothing would stop.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    policy_added=1
  fi
  local rc=0
  { apt-get -o DPkg::Lock::Timeout=600 update -q &&
    DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get -o DPkg::Lock::Timeout=600 \
      install -y -q --no-install-recommends "${need[@]}"; } </dev/null >"$log" 2>&1 8>&- || rc=$?
  [ "$policy_added" = 1 ] && rm -f /usr/sbin/policy-rc.d
  if [ "$rc" != 0 ]; then
    tail -n 40 "$log" >&2
    die "apt-get install ${need[*]} failed (log: $log)"
  fi
  rm -f "$log"
  say "installed: ${need[*]}"
}

# The node image's build context; its content (and the base image's ID) is the image's identity.
write_image_context() {
  local dir="$RUN/img"
  mkdir -p "$dir"
  cat >"$dir/Dockerfile.new" <<EOF
# generated by scripts/slurm-cluster.sh: one Slurm node (slurmd or slurmctld) of the test cluster
FROM $BASE_IMG
ENV DEBIAN_FRONTEND=noninteractive
# policy-rc.d: postinst scripts must not try to start services in the image.
# libpmix-dev: Slurm's mpi/pmix plugin dlopen()s the unversioned libpmix.so that only -dev ships.
RUN printf '#!/bin/sh\\nexit 101\\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d \\
 && apt-get update \\
 && apt-get install -y --no-install-recommends slurmd slurmctld slurm-client munge \\
      openmpi-bin libpmix-dev iproute2 procps \\
 && apt-get clean && rm -rf /var/lib/apt/lists/*
COPY entrypoint.sh /usr/local/sbin/hpcflow-slurm-node
ENTRYPOINT ["/usr/local/sbin/hpcflow-slurm-node"]
EOF
  cat >"$dir/entrypoint.sh.new" <<'EOF'
#!/bin/bash
# hpcflow-slurm-node slurmctld|slurmd   (env: SLURM_CONF, HPCFLOW_SLURM_KEY, HPCFLOW_SLURM_MUNGE_SOCK)
set -e
role="${1:?slurmctld or slurmd}"
shift
install -o munge -g munge -m 0400 "$HPCFLOW_SLURM_KEY" /etc/munge/munge.key
sockdir="$(dirname "$HPCFLOW_SLURM_MUNGE_SOCK")"
install -d -o munge -g munge -m 0755 "$sockdir"
runuser -u munge -- /usr/sbin/munged --socket="$HPCFLOW_SLURM_MUNGE_SOCK" --pid-file="$sockdir/munged.pid"
exec "/usr/sbin/$role" -D -f "$SLURM_CONF" "$@"
EOF
  chmod 755 "$dir/entrypoint.sh.new"
  local f
  for f in Dockerfile entrypoint.sh; do
    replace_if_changed "$dir/$f.new" "$dir/$f" || true
  done
}

build_node_image() {
  write_image_context
  local base_id want have log
  base_id=$(docker image inspect -f '{{.Id}}' "$BASE_IMG")
  want=$(cat "$RUN/img/Dockerfile" "$RUN/img/entrypoint.sh" <(echo "$base_id") | sha256sum | cut -c1-16)
  have=$(docker image inspect -f '{{index .Config.Labels "hpcflow-slurm.context"}}' "$NODE_IMG" 2>/dev/null || true)
  [ "$have" = "$want" ] && return 0
  say "building $NODE_IMG (apt inside, from Debian's mirror)"
  log="$RUN/log/node-image-build.log"
  if ! DOCKER_BUILDKIT=0 docker build --network host --label "hpcflow-slurm.context=$want" \
      -t "$NODE_IMG" "$RUN/img" </dev/null >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    die "docker build of $NODE_IMG failed (log: $log)"
  fi
  say "built $NODE_IMG"
}

write_config() {
  mkdir -p "$RUN/etc" "$RUN/log" "$RUN/state" "$RUN/spool" "$RUN/tmp" "$SHARED"
  chmod 1777 "$SHARED"
  local n
  for n in $(node_names); do
    mkdir -p "$RUN/spool/$n" "$RUN/tmp/$n"
    chmod 1777 "$RUN/tmp/$n"
  done
  if [ ! -s "$RUN/munge.key" ]; then
    (umask 077 && dd if=/dev/urandom of="$RUN/munge.key.new" bs=1024 count=1 status=none)
    mv "$RUN/munge.key.new" "$RUN/munge.key"
  fi
  local cpus
  cpus=$(nproc)
  {
    cat <<EOF
# generated by scripts/slurm-cluster.sh (the hpcflow test cluster): do not edit, it is rewritten by \`up\`
ClusterName=$CLUSTER
SlurmctldHost=slurmctl($NET.2)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
# the cluster's own munged (host and every node): the machine's munge, if any, is left alone
AuthInfo=socket=$MUNGE_SOCK
StateSaveLocation=$RUN/state
# spool and TmpFS on the shared host path, one directory per node (%n): the containers a job starts
# on a node (bind-mounting $RUN) then reach the step's PMIx server; a TmpFS shared by all nodes would
# make the nodes' PMIx directories collide.
SlurmdSpoolDir=$RUN/spool/%n
TmpFS=$RUN/tmp/%n
SlurmctldLogFile=$RUN/log/slurmctld.log
SlurmdLogFile=$RUN/log/slurmd-%n.log
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
# no cgroups (no writable cgroupfs in the node containers): processes are tracked by their parent
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# the default batch_sched_delay=3 makes a batch job wait up to 3 s for the 1 s scheduling tick
SchedulerParameters=batch_sched_delay=0
MpiDefault=none
ReturnToService=2
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=300
# time limits are whole minutes, checked by slurmctld's periodic timer: --time=1 ends in TIMEOUT
# 60-90 s after the start; OverTimeLimit=0 adds no grace minutes
OverTimeLimit=0
MailProg=/bin/true
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=$NET.1
AccountingStoragePort=6819
# messages to slurmdbd authenticate with this munge socket, not AuthInfo's
AccountingStoragePass=$MUNGE_SOCK
JobCompType=jobcomp/filetxt
JobCompLoc=$RUN/log/jobcomp.txt
EOF
    for n in $(node_names); do
      echo "NodeName=$n NodeHostname=$n NodeAddr=$NET.$((10 + ${n#n})) CPUs=$cpus RealMemory=1000 State=UNKNOWN"
    done
    echo "PartitionName=debug Nodes=$(node_names | grep -vx "$FAULT_NODE" | paste -sd,) Default=YES MaxTime=INFINITE State=UP"
    echo "# fault-injection tests only: they take $FAULT_NODE down or drain it"
    echo "PartitionName=$FAULT_PARTITION Nodes=$FAULT_NODE Default=NO MaxTime=INFINITE State=UP"
  } >"$CONF.new"
  replace_if_changed "$CONF.new" "$CONF" || true

  # slurmdbd.conf sits next to slurm.conf (slurmdbd finds it through SLURM_CONF); root only (a password)
  (umask 077 && cat >"$RUN/etc/slurmdbd.conf.new" <<EOF
# generated by scripts/slurm-cluster.sh
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCK
DbdHost=localhost
DbdAddr=$NET.1
DbdPort=6819
SlurmUser=root
PidFile=$DB/slurmdbd.pid
LogFile=$RUN/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=hpcflow-slurm
StorageLoc=slurm_acct_db
EOF
  )
  DBD_CONF_CHANGED=0
  replace_if_changed "$RUN/etc/slurmdbd.conf.new" "$RUN/etc/slurmdbd.conf" || DBD_CONF_CHANGED=1
}

start_host_munged() {
  install -d -o munge -g munge -m 0700 "$MUNGE_HOST"
  local restart=0
  cmp -s "$RUN/munge.key" "$MUNGE_HOST/munge.key" || restart=1
  if [ "$restart" = 0 ] && pid_alive "$MUNGE_HOST/munged.pid" munged &&
      munge -n --socket="$MUNGE_SOCK" 2>/dev/null | unmunge --socket="$MUNGE_SOCK" >/dev/null 2>&1; then
    return 0
  fi
  stop_pidfile "$MUNGE_HOST/munged.pid" munged
  install -o munge -g munge -m 0400 "$RUN/munge.key" "$MUNGE_HOST/munge.key"
  install -d -o munge -g munge -m 0755 "$(dirname "$MUNGE_SOCK")"
  runuser -u munge -- /usr/sbin/munged --socket="$MUNGE_SOCK" --key-file="$MUNGE_HOST/munge.key" \
    --pid-file="$MUNGE_HOST/munged.pid" --seed-file="$MUNGE_HOST/munged.seed" \
    --log-file="$MUNGE_HOST/munged.log" </dev/null >/dev/null 2>&1 8>&- ||
    { tail -n 20 "$MUNGE_HOST/munged.log" >&2 || true; die "munged did not start"; }
  poll 30 sh -c "munge -n --socket='$MUNGE_SOCK' | unmunge --socket='$MUNGE_SOCK'" ||
    die "munged (socket $MUNGE_SOCK) does not answer"
  say "munged started on the host (pid $(cat "$MUNGE_HOST/munged.pid"), socket $MUNGE_SOCK)"
}

create_network() {
  docker network inspect "$NETNAME" >/dev/null 2>&1 && return 0
  docker network create --internal --subnet "$NET.0/24" --gateway "$NET.1" \
    -o com.docker.network.bridge.name=hpcflow-slurm --label "$LABEL" "$NETNAME" >/dev/null
  say "network $NETNAME ($NET.0/24, internal; this machine is $NET.1)"
}

start_accounting() {
  mkdir -p "$DB"
  chown mysql:mysql "$DB"
  if ! pid_alive "$DB/mysqld.pid" mariadbd; then
    if [ ! -d "$DB/data/mysql" ]; then
      rm -rf "$DB/data"
      install -d -o mysql -g mysql "$DB/data"
      mariadb-install-db --no-defaults --user=mysql --datadir="$DB/data" --skip-test-db --auth-root-authentication-method=socket \
        </dev/null >"$RUN/log/mariadb-install-db.log" 2>&1 8>&- ||
        { tail -n 20 "$RUN/log/mariadb-install-db.log" >&2; die "mariadb-install-db failed"; }
    fi
    setsid /usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$DB/data" --bind-address=127.0.0.1 \
      --port="$DB_PORT" --socket="$DB/mysqld.sock" --pid-file="$DB/mysqld.pid" \
      --log-error="$RUN/log/mariadb.err" --innodb-buffer-pool-size=64M --performance-schema=OFF \
      --innodb-lock-wait-timeout=900 --skip-name-resolve --skip-log-bin \
      </dev/null >/dev/null 2>&1 8>&- &
    poll "$WAIT_SEC" mariadb-admin --no-defaults -S "$DB/mysqld.sock" ping ||
      { tail -n 20 "$RUN/log/mariadb.err" >&2; die "MariaDB did not start"; }
    poll 30 pid_alive "$DB/mysqld.pid" mariadbd || die "MariaDB wrote no pid file"
    say "mariadbd started (pid $(cat "$DB/mysqld.pid"), 127.0.0.1:$DB_PORT)"
  fi
  if [ "$DBD_CONF_CHANGED" = 1 ]; then stop_pidfile "$DB/slurmdbd.pid" slurmdbd; fi
  if ! pid_alive "$DB/slurmdbd.pid" slurmdbd; then
    mariadb --no-defaults -S "$DB/mysqld.sock" -e "
      CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'hpcflow-slurm';
      GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" </dev/null
    # slurmdbd daemonizes itself (and writes its PidFile)
    SLURM_CONF="$CONF" /usr/sbin/slurmdbd </dev/null >>"$RUN/log/slurmdbd.out" 2>&1 8>&- ||
      { tail -n 20 "$RUN/log/slurmdbd.log" >&2 || true; die "slurmdbd did not start"; }
    poll "$WAIT_SEC" bash -c "exec 3<>/dev/tcp/$NET.1/6819" ||
      { tail -n 20 "$RUN/log/slurmdbd.log" >&2 || true; die "slurmdbd does not answer on $NET.1:6819"; }
    say "slurmdbd started (pid $(cat "$DB/slurmdbd.pid" 2>/dev/null), $NET.1:6819)"
  fi
}

start_containers() {
  local img_id docker_bin cfg
  img_id=$(docker image inspect -f '{{.Id}}' "$NODE_IMG")
  docker_bin=$(readlink -f "$(command -v docker)")
  # what a node container is made of; a change restarts every container
  cfg=$(cat "$CONF" "$RUN/munge.key" <(echo "$img_id $docker_bin $RUN $SHARED") | sha256sum | cut -c1-16)
  local -a common=(--init --network "$NETNAME" --label "$LABEL" --label "hpcflow-slurm.config=$cfg"
    -e "SLURM_CONF=$CONF" -e "HPCFLOW_SLURM_KEY=$RUN/munge.key" -e "HPCFLOW_SLURM_MUNGE_SOCK=$MUNGE_SOCK"
    -v "$RUN:$RUN" -v "$SHARED:$SHARED")
  STARTED=()
  start_one() { # name hostname ip role [docker run args...]
    local c=$1 h=$2 ip=$3 role=$4 state
    shift 4
    state=$(docker inspect -f '{{.State.Running}} {{index .Config.Labels "hpcflow-slurm.config"}}' "$c" 2>/dev/null || true)
    [ "$state" = "true $cfg" ] && return 0
    docker rm -f "$c" >/dev/null 2>&1 || true
    docker run -d --name "$c" --hostname "$h" --network-alias "$h" --ip "$ip" "${common[@]}" "$@" \
      "$NODE_IMG" "$role" >/dev/null
    STARTED+=("$c")
  }
  # an old config's containers (e.g. after HPCFLOW_SLURM_NODES went down): stop before the others start
  local c want
  want=" $(container_names | tr '\n' ' ')"
  for c in $(docker ps -a --filter "label=$LABEL" --format '{{.Names}}'); do
    if [[ "$want " != *" $c "* ]]; then
      docker stop -t 15 "$c" >/dev/null 2>&1 || true
      docker rm -f "$c" >/dev/null 2>&1 || true
      say "removed $c (not in this configuration)"
    fi
  done
  start_one "$PREFIX-ctl" slurmctl "$NET.2" slurmctld
  local n
  for n in $(node_names); do
    # --ipc shareable: a job's containers join the node's IPC namespace (/dev/shm for MPI ranks)
    start_one "$PREFIX-$n" "$n" "$NET.$((10 + ${n#n}))" slurmd --ipc shareable --shm-size 256m \
      -e "HPCFLOW_SLURM_NODE_CONTAINER=$PREFIX-$n" \
      -v /var/run/docker.sock:/var/run/docker.sock -v "$docker_bin:/usr/bin/docker:ro"
  done
  if [ "${#STARTED[@]}" -gt 0 ]; then
    rm -f "$RUN/ready"
    say "containers (re)started: ${STARTED[*]}"
  fi
  CONTAINER_CFG=$cfg
}

do_up() {
  [ "$(id -u)" = 0 ] || die "run as root (installs packages, starts daemons and containers)"
  bash "$repo_root/scripts/ensure-docker.sh" || die "no Docker engine (scripts/ensure-docker.sh failed)"
  bash "$repo_root/scripts/build-base-images.sh" || die "scripts/build-base-images.sh failed"
  # fd 8 = the lock; every daemon started below gets `8>&-`, or it would hold the lock forever
  mkdir -p "$(dirname "$LOCK")"
  exec 8>"$LOCK"
  flock 8
  install_packages
  mkdir -p "$RUN/log"
  build_node_image
  write_config
  start_host_munged
  create_network
  start_accounting
  start_containers
  cluster_env

  wait_cluster "$WAIT_SEC" "slurmctld to answer" scontrol ping
  local started=${#STARTED[@]}
  # $RUN/ready: the last `up` of these very containers got through the smoke test
  if [ "$started" = 0 ] && [ "$(cat "$RUN/ready" 2>/dev/null)" = "$CONTAINER_CFG" ]; then
    # nothing was restarted: healthy when the controller answers and every node is up (running jobs
    # of other callers are fine: do not wait for idle nodes, do not queue a smoke test behind them)
    if poll 30 nodes_up; then say "up (no change)"; return 0; fi
    sinfo -N >&2 || true
    die "the cluster runs but not every node is up (see sinfo above; 'down' then 'up' restarts it)"
  fi
  if [ "$started" -gt "$TOTAL" ]; then
    # controller and every node were just (re)started: no job can be running. Jobs recovered from the
    # saved state as running (after an unclean stop) would keep their nodes allocated forever
    # (InactiveLimit=0), and pending ones would start on the new cluster: cancel them all.
    local -a stale
    mapfile -t stale < <(squeue -h -o %i 2>/dev/null)
    if [ "${#stale[@]}" -gt 0 ]; then
      scancel "${stale[@]}" || true
      say "cancelled jobs recovered from the previous cluster: ${stale[*]}"
    fi
    # A drained or down fault node is remembered across restarts (a fault test that was
    # interrupted): no test can be using it now.
    if sinfo -h -n "$FAULT_NODE" -o '%t' 2>/dev/null | grep -qE '^(drain|drng|down)'; then
      scontrol update nodename="$FAULT_NODE" state=resume 2>/dev/null || true
      say "resumed $FAULT_NODE (left down or drained by an earlier fault test)"
    fi
    wait_cluster "$WAIT_SEC" "all $TOTAL nodes to be idle" all_idle
    say "all $TOTAL nodes idle"
  else
    # some containers restarted (one had died, say): other nodes may be running jobs
    wait_cluster "$WAIT_SEC" "the $N nodes of debug to be up" nodes_up
    say "the $N nodes of debug up"
  fi
  local k=2 out
  [ "$N" -lt 2 ] && k=$N
  out=$(timeout "$WAIT_SEC" srun -N"$k" -J hpcflow-slurm-smoke-test --chdir="$SHARED" hostname 2>"$RUN/log/smoke-test.err") ||
    die "smoke test srun -N$k hostname failed: $out $(cat "$RUN/log/smoke-test.err")"
  [ "$(printf '%s\n' "$out" | sort -u | grep -c .)" = "$k" ] || die "smoke test: srun -N$k hostname printed: $out"
  say "smoke test: srun -N$k hostname -> $(printf '%s\n' "$out" | sort | tr '\n' ' ')"
  echo "$CONTAINER_CFG" >"$RUN/ready"
  say "up: $(do_env)"
}

case "$cmd" in
  up) do_up ;;
  down) shift; do_down "$@" ;;
  env) do_env ;;
  status) do_status ;;
  *) usage ;;
esac
