#!/usr/bin/env bash
# Idempotent single-node SLURM (Debian 12, slurm 22.05) for tests and CI: slurmctld + slurmd + munge on this
# machine, partition "debug". Needs root; no systemd or cgroups (so memory limits are not enforced).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
alive() { [ -s "$1" ] && ps -o stat= -p "$(cat "$1")" 2>/dev/null | grep -qv '^Z'; }   # pidfile -> live, non-zombie
command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null || {
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null; }
NCPU=$(nproc)
MEM=$(( $(awk '/MemTotal/{print int($2/1024)}' /proc/meminfo) * 85 / 100 ))      # MiB, below slurmd's measured value
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
chown munge:munge /run/munge && chmod 0755 /run/munge
[ -s /etc/munge/munge.key ] || { mungekey --create --keyfile=/etc/munge/munge.key; chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key; }
cat > /etc/slurm/slurm.conf.new <<EOF
ClusterName=ci
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
NodeName=localhost CPUs=${NCPU} RealMemory=${MEM} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
changed=0; cmp -s /etc/slurm/slurm.conf.new /etc/slurm/slurm.conf || { mv /etc/slurm/slurm.conf.new /etc/slurm/slurm.conf; changed=1; }
rm -f /etc/slurm/slurm.conf.new
alive /run/munge/munged.pid || runuser -u munge -- /usr/sbin/munged
munge -n | unmunge >/dev/null
if alive /run/slurmctld.pid; then [ $changed = 1 ] && scontrol reconfigure; else slurmctld; fi
alive /run/slurmd.pid || slurmd -N localhost
for _ in $(seq 60); do [ "$(sinfo -h -n localhost -o %t 2>/dev/null)" = idle ] && break; sleep 0.5; done
[ "$(sinfo -h -n localhost -o %t)" = idle ] || { sinfo -R; tail -20 /var/log/slurm/slurmd.log /var/log/slurm/slurmctld.log; exit 1; }
timeout 60 srun -t 1 true   # end-to-end readiness check (munge auth + slurmd registered)
echo "slurm up: munged=$(cat /run/munge/munged.pid) slurmctld=$(cat /run/slurmctld.pid) slurmd=$(cat /run/slurmd.pid)"
