#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, from Debian's packages (slurmctld, slurmd,
# slurm-client, munge), for trying the grid scripts without a real cluster. Needs root; starts
# the daemons directly (no systemd). Ported from a tested recipe (Slurm 22.05, munge 0.5).
#
#   scripts/slurm/cluster.sh up      # install if needed, configure, start; waits for an idle node
#   scripts/slurm/cluster.sh down    # cancel jobs, stop the daemons
#
# Found on the way (kept in the configuration below):
# - `sacct` needs slurmdbd; without it use `squeue -t all`, `scontrol show job` or the jobcomp file.
# - A dependent `afterok` job waits forever after a failed task unless
#   DependencyParameters=kill_invalid_depend.
# - MailProg must exist; no cgroups here, so proctrack/linuxproc and task/none.
# - The node's hostname must resolve; MinJobAge keeps finished jobs visible to squeue for 5 minutes.
set -euo pipefail
STATE=${SLURM_LOCAL_STATE:-/tmp/dynaprune-slurm}
mkdir -p "$STATE"

install_pkgs() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null && return
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null
}

up() {
  [ "$(id -u)" = 0 ] || { echo "cluster.sh: needs root (it writes /etc/slurm and starts daemons)" >&2; exit 1; }
  install_pkgs
  local h mem
  h=$(hostname -s)
  mem=$(( $(free -m | awk '/^Mem:/{print $2}') * 9 / 10 ))
  mkdir -p /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /etc/slurm
  install -d -o munge -g munge -m 0755 /run/munge
  [ -s /etc/munge/munge.key ] || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  cat > /etc/slurm/slurm.conf <<CONF
ClusterName=dynaprune-local
SlurmctldHost=$h
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
DependencyParameters=kill_invalid_depend
ReturnToService=2
MpiDefault=none
MailProg=/bin/true
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=5
Waittime=0
NodeName=$h CPUs=$(nproc) Sockets=1 CoresPerSocket=$(nproc) ThreadsPerCore=1 RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
  munge -n | unmunge >/dev/null
  slurmctld -D >/var/log/slurm/slurmctld.stderr 2>&1 & echo $! > "$STATE/slurmctld.pid"
  slurmd -D >/var/log/slurm/slurmd.stderr 2>&1 & echo $! > "$STATE/slurmd.pid"
  cat /run/munge/munged.pid > "$STATE/munged.pid"
  for _ in $(seq 1 120); do
    [ "$(sinfo -h -o %T 2>/dev/null)" = idle ] && { echo "slurm: node $h idle"; return 0; }
    sleep 0.25
  done
  echo "cluster.sh: the node did not become idle; see /var/log/slurm/" >&2
  return 1
}

down() {
  scancel --user="$(id -un)" 2>/dev/null || true
  scontrol shutdown 2>/dev/null || true
  for p in slurmctld slurmd; do
    if [ -f "$STATE/$p.pid" ]; then
      pid=$(cat "$STATE/$p.pid")
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill "$pid" 2>/dev/null || true
      rm -f "$STATE/$p.pid"
    fi
  done
  if [ -f "$STATE/munged.pid" ]; then kill "$(cat "$STATE/munged.pid")" 2>/dev/null || true; rm -f "$STATE/munged.pid"; fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
