#!/usr/bin/env bash
# Multi-host harness: 3 emulated hosts on this Linux machine (run as root), 6 ranks, under MPICH and Open MPI.
#
#   bash scripts/multihost_check.sh            # both MPIs; MPI_KINDS="mpich" or "openmpi" for one
#
# Hosts: node1..node3, each a network namespace with one veth (cb0, MH_NET.11-13/24) on a bridge that lives in
# a namespace of its own (nothing is added to the machine's own network namespace), no default route, no NAT,
# IPv6 off, ip_forward untouched: MPI traffic can only go between the emulated hosts' addresses. Each host
# also has its own UTS namespace (hostname nodeN) and mount namespace (/etc/hosts naming the three hosts;
# node-local directories are mounts there), held by one `sleep` process per host. An ssh stand-in
# (scripts/multihost/fake_ssh) runs a command inside a host's namespaces; mpiexec runs inside node1.
# MPICH: Hydra with -launcher ssh -launcher-exec fake_ssh, ch4 ofi netmod with libfabric's tcp provider
# on cb0. Open MPI: --mca plm_rsh_agent fake_ssh, pml ob1, btl tcp,self, TCP (btl and oob) on MH_NET.0/24.
#
# Checks, per MPI (one "PASS <mpi>/<check> (...)" or "FAIL <mpi>/<check> (reason)" line each):
#   isolation    no route out of any host; the subnet is used by nothing else
#   placement    ranks 0-1 on node1, 2-3 on node2, 4-5 on node3; their TCP peers are emulated hosts only
#   run          demo on 3 hosts + validate + simulation checksum == a one-host run of the same arguments
#   fail-fast    --fail-rank 4 (node3) --fail-after 2 --slow 0.5: non-zero exit within 5 s of the raise,
#                then --resume completes with the same checksum
#   sigkill      SIGKILL of rank 3 (node2) mid-run: the job ends within 30 s, --resume reaches the checksum
#   node-local   output directory node-local on node3 (a tmpfs in node3's mount namespace): refused at
#                start (non-zero exit, error names node3, no _SUCCESS, nothing complete)
#   singleton-slurm / singleton-env
#                the demo started as 3 independent processes (one per host) whose environment says 3 tasks
#                (Slurm variables / the MPI's own launcher variables) but MPI sees 3 singletons: every one
#                refused (non-zero), nothing written
#   slurm-signal scripts/slurm_demo.sbatch with a stand-in srun over the 3 hosts, SIGTERM to every task as
#                Slurm's --signal=TERM@T does: ranks checkpoint the last iteration, training manifest
#                "interrupted"; the same script again resumes to a complete, valid run
# MH_CHECKS="run sigkill" runs only the named checks (the one-host reference comes with "run").
# Exit status: 0 when every check passed. Namespaces, bridge, mounts and processes are torn down on exit,
# also when a check fails or the script is interrupted. MH_KEEP_RUNS=1 keeps the run directories.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. scripts/mpi_launcher.sh

MPI_KINDS=${MPI_KINDS:-mpich openmpi}
MH_NET=${MH_NET:-10.213.77}            # a /24 nothing else here uses (checked)
SCEN=${MH_SCENARIOS:-120}              # scenarios of every run (20 per rank at 6 ranks)
DEMO=(--scenarios "$SCEN" --iterations 3 --checkpoint-every 2 --quiet)
FAIL_TARGET=5                          # seconds from the raise to the end of the job
KILL_BOUND=30                          # seconds from SIGKILL to the end of the job
JOB_TIMEOUT=${MH_JOB_TIMEOUT:-240}     # any single job

[ "$(id -u)" = 0 ] || { echo "multihost_check: needs root (network/UTS/mount namespaces)" >&2; exit 2; }
for tool in ip unshare nsenter setsid timeout; do
    command -v "$tool" >/dev/null || { echo "multihost_check: $tool missing (iproute2, util-linux)" >&2; exit 2; }
done

P="cbmh$$"                             # prefix of every namespace and link name we create
MH_STATE=$(mktemp -d /tmp/cbmh.XXXXXX)
export MH_STATE
RUNS=$MH_STATE/runs
mkdir -p "$MH_STATE/hosts" "$MH_STATE/bin" "$RUNS"
ln -s "$ROOT/scripts/multihost/fake_ssh" "$MH_STATE/bin/fake_ssh"
FAKE_SSH=$MH_STATE/bin/fake_ssh
export MH_SSH_LOG=$MH_STATE/ssh.log
declare -A HOLDER=()
FORWARD_BEFORE=$(cat /proc/sys/net/ipv4/ip_forward)
RESULTS=()
FAILED=0

# ----------------------------------------------------------------------------------------------- teardown
ns_pids() {  # pids of every process inside one of our network namespaces (test -ef: no fork per process)
    local ns p f
    local -a files=()
    for ns in "${P}-h1" "${P}-h2" "${P}-h3" "${P}-sw"; do
        [ -e "/run/netns/$ns" ] && files+=("/run/netns/$ns")
    done
    [ ${#files[@]} -gt 0 ] || return 0
    for p in /proc/[0-9]*; do
        for f in "${files[@]}"; do
            if [ "$p/ns/net" -ef "$f" ]; then echo "${p#/proc/}"; break; fi
        done
    done
}
teardown() {
    local pids i
    pids=$(ns_pids)
    # shellcheck disable=SC2086
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null
    for i in 1 2 3; do [ -n "${HOLDER[$i]:-}" ] && kill -9 "${HOLDER[$i]}" 2>/dev/null; done
    sleep 0.2
    for ns in "${P}-h1" "${P}-h2" "${P}-h3" "${P}-sw"; do
        [ -e "/run/netns/$ns" ] && ip netns del "$ns" 2>/dev/null
    done
    local left
    left=$(ip netns list 2>/dev/null | grep -c "^${P}-" || true)
    [ "$left" = 0 ] || echo "multihost_check: WARNING: $left namespaces left: $(ip netns list | grep "^${P}-")" >&2
    [ "$(cat /proc/sys/net/ipv4/ip_forward)" = "$FORWARD_BEFORE" ] || echo "multihost_check: WARNING: ip_forward changed" >&2
    if [ "${MH_KEEP_RUNS:-0}" = 1 ]; then echo "runs kept in $RUNS" >&2; else rm -rf "$MH_STATE"; fi
}
trap teardown EXIT
trap 'exit 130' INT TERM HUP

# ----------------------------------------------------------------------------------------------- hosts
subnet_in_use() {  # anything on this machine using MH_NET.0/24?
    ip -4 addr show 2>/dev/null | grep -q " ${MH_NET//./\\.}\." && return 0
    ip -4 route show table all 2>/dev/null | grep -q "^${MH_NET//./\\.}\." && return 0
    local ns
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
        ip netns exec "$ns" ip -4 addr show 2>/dev/null | grep -q " ${MH_NET//./\\.}\." && return 0
    done
    return 1
}

setup_hosts() {
    if subnet_in_use; then echo "multihost_check: $MH_NET.0/24 is already in use here; set MH_NET" >&2; return 1; fi
    printf '127.0.0.1 localhost\n%s.11 node1\n%s.12 node2\n%s.13 node3\n' "$MH_NET" "$MH_NET" "$MH_NET" \
        > "$MH_STATE/hosts.txt"
    ip netns add "${P}-sw" || return 1
    ip -n "${P}-sw" link add br0 type bridge || return 1
    ip -n "${P}-sw" link set br0 up
    local i pid
    for i in 1 2 3; do
        ip netns add "${P}-h$i" || return 1
        ip link add "${P}h${i}a" type veth peer name "${P}h${i}b" || return 1
        ip link set "${P}h${i}a" netns "${P}-h$i" || return 1
        ip link set "${P}h${i}b" netns "${P}-sw" || return 1
        ip -n "${P}-h$i" link set "${P}h${i}a" name cb0 || return 1
        ip netns exec "${P}-h$i" sh -c 'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6;
                                         echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6' 2>/dev/null
        ip -n "${P}-h$i" addr add "$MH_NET.1$i/24" dev cb0 || return 1
        ip -n "${P}-h$i" link set cb0 up
        ip -n "${P}-h$i" link set lo up
        ip -n "${P}-sw" link set "${P}h${i}b" master br0 up || return 1
        # the host: its own UTS and mount namespaces, held by a sleep that we record by pid
        setsid ip netns exec "${P}-h$i" unshare --uts --mount --propagation private \
            sh -c "hostname node$i && mount --bind '$MH_STATE/hosts.txt' /etc/hosts && exec sleep infinity" \
            </dev/null >/dev/null 2>&1 &
        pid=$!
        disown "$pid"   # ended by pid in teardown; no job-control noise
        HOLDER[$i]=$pid
        local t=0
        until [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = sleep ]; do
            sleep 0.05; t=$((t + 1)); [ $t -lt 100 ] || { echo "host node$i did not start" >&2; return 1; }
        done
        echo "$pid" > "$MH_STATE/hosts/node$i"
        echo "$pid" > "$MH_STATE/hosts/$MH_NET.1$i"
    done
}

on_host() {  # on_host I CMD... : run CMD in host I's namespaces, cwd the repository, env as given
    local i=$1
    shift
    nsenter -t "${HOLDER[$i]}" -n -u -m --wd="$ROOT" -- "$@"
}

# ----------------------------------------------------------------------------------------------- MPI
set_launcher() {  # set_launcher KIND: MPIEXEC* for 3 hosts (HF) or one host (LOCAL) launches from node1
    use_mpi "$1"
    V=$MPI_VENV
    PY=$V/bin/python
    HF=$MH_STATE/hostfile.$1
    if [ "$1" = mpich ]; then
        printf 'node1:2\nnode2:2\nnode3:2\n' > "$HF"
        MULTI_PREFLAGS="-launcher ssh -launcher-exec $FAKE_SSH -f $HF"
        LOCAL_PREFLAGS=""
        # ch4's ofi netmod over libfabric's tcp provider on the emulated link (the default netmod, UCX,
        # does not go through the emulated network); Hydra hands mpiexec's environment to every rank.
        # MH_MPICH_ENV replaces these (e.g. MH_MPICH_ENV= to see what the default does).
        read -r -a MPI_ENV <<< "${MH_MPICH_ENV-MPIR_CVAR_CH4_NETMOD=ofi FI_PROVIDER=tcp FI_TCP_IFACE=cb0}"
    else
        printf 'node1 slots=2\nnode2 slots=2\nnode3 slots=2\n' > "$HF"
        local tcp="--mca pml ob1 --mca btl tcp,self --mca btl_tcp_if_include $MH_NET.0/24 --mca oob_tcp_if_include $MH_NET.0/24"
        # -x PATH: the remote daemons look the program up in PATH (their login PATH lacks the venv)
        MULTI_PREFLAGS="--allow-run-as-root --hostfile $HF --mca plm_rsh_agent $FAKE_SSH -x PATH $tcp"
        LOCAL_PREFLAGS="--allow-run-as-root --oversubscribe $tcp"
        MPI_ENV=()
    fi
}

# env for commands on node1: the venv first on PATH, the MPI settings, the launcher settings
node1_env() {  # node1_env PREFLAGS CMD...
    local pre=$1
    shift
    on_host 1 env -i HOME=/root LANG=C.UTF-8 PATH="$V/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" \
        PYTHONDONTWRITEBYTECODE=1 MH_STATE="$MH_STATE" MH_SSH_LOG="$MH_SSH_LOG" "${MPI_ENV[@]}" \
        MPIEXEC="$MPIEXEC" MPIEXEC_NUMPROC_FLAG=-n MPIEXEC_PREFLAGS="$pre" "$@"
}
multi() {  # multi N CMD...: N ranks on the 3 hosts (2 slots each), launched from node1
    local n=$1
    shift
    # shellcheck disable=SC2086
    node1_env "$MULTI_PREFLAGS" timeout -k 5 "$JOB_TIMEOUT" "$MPIEXEC" -n "$n" $MULTI_PREFLAGS "$@" &
    wait $!   # (a trapped signal interrupts wait at once, a foreground command only when it ends)
}
local1() {  # local1 N CMD...: N ranks on node1 alone
    local n=$1
    shift
    # shellcheck disable=SC2086
    node1_env "$LOCAL_PREFLAGS" timeout -k 5 "$JOB_TIMEOUT" "$MPIEXEC" -n "$n" $LOCAL_PREFLAGS "$@" &
    wait $!
}

checksum_of() {  # the simulation checksum of a run directory ("" when none)
    "$PY" - "$1" <<'PY' 2>/dev/null
import json, sys
try:
    print(json.load(open(sys.argv[1] + "/simulation/_manifest.json"))["checksum"]["value"])
except Exception:
    print("")
PY
}
status_of() {  # status_of DIR simulation|training
    "$PY" - "$1/$2/_manifest.json" <<'PY' 2>/dev/null
import json, sys
try:
    print(json.load(open(sys.argv[1]))["status"])
except Exception:
    print("none")
PY
}
validate() { "$V/bin/cobre-mpi-io" validate "$1" > "$1.validate" 2>&1; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# pid of the demo process that has MPI rank R and writes to OUT (any host: one pid namespace)
rank_pid() {
    local r=$1 out=$2 p
    for p in /proc/[0-9]*; do
        { tr '\0' ' ' < "$p/cmdline"; } 2>/dev/null | grep -q -- "cobre.mpi.io.* demo .*--output $out" || continue
        { tr '\0' '\n' < "$p/environ"; } 2>/dev/null | grep -qx -e "PMI_RANK=$r" -e "OMPI_COMM_WORLD_RANK=$r" || continue
        echo "${p#/proc/}"
        return 0
    done
    return 1
}
host_of_pid() {  # hostname (UTS namespace) of a pid
    nsenter -t "$1" -u hostname 2>/dev/null
}
rank_pids() {  # pids of every rank process (any host) writing to OUT
    local out=$1 p
    for p in /proc/[0-9]*; do
        { tr '\0' ' ' < "$p/cmdline"; } 2>/dev/null | grep -q -- "cobre.mpi.io.* demo .*--output $out\( \|$\)" || continue
        { tr '\0' '\n' < "$p/environ"; } 2>/dev/null | grep -q -e "^PMI_RANK=" -e "^OMPI_COMM_WORLD_RANK=" \
            && echo "${p#/proc/}"
    done
}
wait_gone() {  # wait_gone BOUND_S PID...: until every PID is gone, zombies included (reaped); prints the seconds
    local bound=$1 t0 p alive
    shift
    t0=$(now)
    while :; do
        alive=0
        for p in "$@"; do [ -e "/proc/$p" ] && alive=1 && break; done
        [ "$alive" = 0 ] && break
        awk -v a="$t0" -v b="$(now)" -v m="$bound" 'BEGIN { exit !(b - a > m) }' && { secs "$t0" "$(now)"; return 1; }
        sleep 0.05
    done
    secs "$t0" "$(now)"
}

# ----------------------------------------------------------------------------------------------- checks
MSG=""
record() {  # record NAME STATUS(0/1) SECONDS
    local line
    if [ "$2" = 0 ]; then line="PASS $1 (${3}s${MSG:+; $MSG})"; else line="FAIL $1 ($MSG; ${3}s)"; FAILED=1; fi
    RESULTS+=("$line")
    echo "$line"
}
run_check() {  # run_check KIND NAME FUNCTION (MH_CHECKS="name ..." runs only those)
    local t0 rc
    if [ -n "${MH_CHECKS:-}" ] && ! [[ " $MH_CHECKS " == *" $2 "* ]]; then return 0; fi
    MSG=""
    t0=$(now)
    "$3"
    rc=$?
    record "$1/$2" "$rc" "$(secs "$t0" "$(now)")"
}

check_isolation() {
    local i r
    for i in 1 2 3; do
        r=$(on_host "$i" ip -4 route show)
        if echo "$r" | grep -q default; then MSG="node$i has a default route"; return 1; fi
        if on_host "$i" ip route get 192.0.2.1 >/dev/null 2>&1; then MSG="node$i can route off the subnet"; return 1; fi
        if [ "$(on_host "$i" hostname)" != "node$i" ]; then MSG="node$i hostname is $(on_host "$i" hostname)"; return 1; fi
    done
    if [ "$(cat /proc/sys/net/ipv4/ip_forward)" != "$FORWARD_BEFORE" ]; then MSG="ip_forward changed"; return 1; fi
    MSG="routes: $MH_NET.0/24 only; hostnames node1-3"
}

check_placement() {
    local out=$RUNS/$KIND-placement.json
    if ! multi 6 "$PY" "$ROOT/scripts/multihost/where.py" > "$out" 2> "$out.err"; then
        MSG="job failed: $(tail -c 300 "$out.err")"; return 1
    fi
    MSG=$("$PY" - "$out" "$MH_NET" <<'PY'
import ipaddress, json, sys
ranks = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
net = ipaddress.ip_network(sys.argv[2] + ".0/24")
want = {0: "node1", 1: "node1", 2: "node2", 3: "node2", 4: "node3", 5: "node3"}
bad = [f"rank {r['rank']} on {r['host']}" for r in ranks if want.get(r["rank"]) != r["host"]]
others = [f"rank {r['rank']} -> {p}" for r in ranks for p in r["peers"]
          if not (ipaddress.ip_address(p) in net or ipaddress.ip_address(p).is_loopback)]
# every rank must hold TCP connections to both other hosts (a transport that bypasses the emulated
# network, e.g. shared memory across the namespaces, leaves ranks without them)
lonely = []
for r in ranks:
    own = f"{sys.argv[2]}.1{r['host'][-1]}"
    hosts = {p for p in r["peers"] if ipaddress.ip_address(p) in net and p != own}
    if len(hosts) != 2:
        lonely.append(f"rank {r['rank']} has TCP to {sorted(hosts) or 'no other host'}")
if bad or others or lonely:
    print("; ".join(bad + others + lonely))
    sys.exit(1)
print(f"ranks 0-1 node1, 2-3 node2, 4-5 node3; every rank has TCP connections to both other hosts, all in {net}")
PY
) || return 1
}

REF=""
TREF=""
ensure_ref() {  # the one-host reference run of this MPI: 2 ranks on node1, the same arguments
    [ -n "$REF" ] && return 0
    local ref=$RUNS/$KIND-ref t0
    t0=$(now)
    if ! local1 2 "$PY" -m cobre_mpi_io demo --output "$ref" "${DEMO[@]}" > "$ref.log" 2>&1; then
        MSG="$MSG${MSG:+; }one-host reference run failed: $(tail -c 300 "$ref.log")"; return 1
    fi
    TREF=$(secs "$t0" "$(now)")
    REF=$(checksum_of "$ref")
    [ -n "$REF" ] || { MSG="$MSG${MSG:+; }no checksum in the one-host run"; return 1; }
}

check_run() {
    local out=$RUNS/$KIND-run t0
    ensure_ref || return 1
    t0=$(now)
    if ! multi 6 "$PY" -m cobre_mpi_io demo --output "$out" "${DEMO[@]}" > "$out.log" 2>&1; then
        MSG="3-host run failed: $(tail -c 300 "$out.log")"; return 1
    fi
    local tmulti
    tmulti=$(secs "$t0" "$(now)")
    if ! validate "$out"; then MSG="validate: $(head -c 300 "$out.validate")"; return 1; fi
    local got
    got=$(checksum_of "$out")
    if [ "$got" != "$REF" ]; then MSG="checksum $got != one-host $REF"; return 1; fi
    MSG="checksum $got == one-host run; 3 hosts ${tmulti}s, one host ${TREF}s"
}

resume_to_ref() {  # resume_to_ref OUT: --resume on 3 hosts, validate, checksum == REF
    local out=$1
    ensure_ref || return 1
    if ! multi 6 "$PY" -m cobre_mpi_io demo --output "$out" "${DEMO[@]}" --resume > "$out.resume.log" 2>&1; then
        MSG="$MSG; --resume failed: $(tail -c 300 "$out.resume.log")"; return 1
    fi
    if ! validate "$out"; then MSG="$MSG; validate after resume: $(head -c 300 "$out.validate")"; return 1; fi
    local got
    got=$(checksum_of "$out")
    if [ "$got" != "$REF" ]; then MSG="$MSG; resumed checksum $got != $REF"; return 1; fi
    MSG="$MSG; --resume: checksum == one-host run"
}

wait_file() {  # wait_file PATH TIMEOUT_S PID: until PATH exists (0), PID ends (1) or time out (2)
    local deadline
    deadline=$(awk -v t="$(now)" -v d="$2" 'BEGIN { printf "%.3f", t + d }')
    while [ ! -e "$1" ]; do
        kill -0 "$3" 2>/dev/null || return 1
        awk -v t="$(now)" -v d="$deadline" 'BEGIN { exit !(t > d) }' && return 2
        sleep 0.02
    done
}

check_fail_fast() {
    local out=$RUNS/$KIND-failfast r=4 k=2 job rc t_seen="" t_err="" t_raise t_end
    # rank r owns scenarios r, r+6, ...; it writes k of them, sleeping 0.5 s after each, then raises: the
    # raise is 0.5 s after its k-th file appears, or when its error line shows up, whichever is earlier
    local marker
    marker=$out/simulation/costs/scenario_id=$(printf %04d $((r + (k - 1) * 6)))/data.parquet
    multi 6 "$PY" -m cobre_mpi_io demo --output "$out" "${DEMO[@]}" --fail-rank $r --fail-after $k --slow 0.5 \
        > "$out.log" 2>&1 &
    job=$!
    local -a ranks=()
    while kill -0 "$job" 2>/dev/null; do
        [ ${#ranks[@]} -lt 6 ] && mapfile -t ranks < <(rank_pids "$out")
        [ -z "$t_seen" ] && [ -e "$marker" ] && t_seen=$(now)
        [ -z "$t_err" ] && grep -q "injected failure" "$out.log" 2>/dev/null && t_err=$(now)
        sleep 0.02
    done
    wait "$job"
    rc=$?
    t_end=$(now)
    [ -n "$t_seen$t_err" ] || { MSG="rank $r never got to raise (exit $rc): $(tail -c 300 "$out.log")"; return 1; }
    t_raise=$(awk -v s="$t_seen" -v e="$t_err" 'BEGIN { r = (s == "") ? e : s + 0.5; if (e != "" && e < r) r = e;
                                                          printf "%.3f", r }')
    local dt st linger
    dt=$(secs "$t_raise" "$t_end")
    st=$(status_of "$out" simulation)
    linger=$(wait_gone 30 "${ranks[@]}") || { MSG="rank processes still there 30 s after mpiexec exited $rc"; return 1; }
    MSG="exit $rc $dt s after rank $r (node3) raised (every rank process gone $linger s later); simulation manifest $st"
    if [ "$rc" = 0 ]; then MSG="job exited 0 although rank $r raised"; return 1; fi
    if [ -e "$out/simulation/_SUCCESS" ]; then MSG="$MSG; _SUCCESS written"; return 1; fi
    local slow=0
    awk -v d="$dt" -v t="$FAIL_TARGET" 'BEGIN { exit !(d > t) }' && slow=1
    resume_to_ref "$out" || return 1
    if [ "$slow" = 1 ]; then MSG="job ended $dt s after the raise (target <= ${FAIL_TARGET} s); $MSG"; return 1; fi
}

check_sigkill() {
    local out=$RUNS/$KIND-kill r=3 job rc pid host t_kill t_end
    local marker
    marker=$out/simulation/costs/scenario_id=$(printf %04d $((r + 6)))/data.parquet
    multi 6 "$PY" -m cobre_mpi_io demo --output "$out" "${DEMO[@]}" --slow 0.5 > "$out.log" 2>&1 &
    job=$!
    if ! wait_file "$marker" 120 "$job"; then
        kill "$job" 2>/dev/null; wait "$job"; MSG="rank $r never wrote 2 scenarios: $(tail -c 300 "$out.log")"; return 1
    fi
    pid=$(rank_pid $r "$out") || { kill "$job"; wait "$job"; MSG="rank $r process not found"; return 1; }
    local -a ranks
    mapfile -t ranks < <(rank_pids "$out")
    host=$(host_of_pid "$pid")
    kill -9 "$pid"
    t_kill=$(now)
    wait "$job"
    rc=$?
    t_end=$(now)
    local dt linger gone=0 q left=""
    dt=$(secs "$t_kill" "$t_end")
    for q in "${ranks[@]}"; do  # what is left of the ranks when mpiexec returns (state R/S/D, or Z: zombie)
        [ -e "/proc/$q/stat" ] && left="$left $(awk '{ print $3 }' "/proc/$q/stat" 2>/dev/null)"
    done
    # the job has ended when none of its ${#ranks[@]} rank processes is left on any host, reaped (mpiexec may
    # return first; a claim held by a process that still exists, even as a zombie, refuses the resume)
    linger=$(wait_gone "$KILL_BOUND" "${ranks[@]}") || gone=1
    MSG="SIGKILL rank $r (pid $pid on $host): mpiexec exit $rc after $dt s (rank processes left then:${left:- none}), every rank process gone $linger s later; simulation manifest $(status_of "$out" simulation)"
    if [ "$gone" = 1 ]; then MSG="$MSG; rank processes still alive ${KILL_BOUND}s after mpiexec returned"; return 1; fi
    if [ "$host" != node2 ]; then MSG="$MSG; victim not on node2"; return 1; fi
    if [ "$rc" = 0 ]; then MSG="$MSG; exit 0 after a killed rank"; return 1; fi
    if [ -e "$out/simulation/_SUCCESS" ]; then MSG="$MSG; _SUCCESS written"; return 1; fi
    awk -v d="$dt" -v l="$linger" -v t="$KILL_BOUND" 'BEGIN { exit !(d + l > t) }' && { MSG="$MSG; over ${KILL_BOUND}s"; return 1; }
    resume_to_ref "$out"
}

check_node_local() {
    local out=$RUNS/$KIND-nodelocal rc bad="" view sub st
    mkdir -p "$out"
    # node3's own directory at the same path: a tmpfs in node3's mount namespace only
    if ! on_host 3 mount -t tmpfs -o size=256m cbmh-nodelocal "$out"; then MSG="cannot mount tmpfs on node3"; return 1; fi
    multi 6 "$PY" -m cobre_mpi_io demo --output "$out" --scenarios 24 --iterations 2 --quiet > "$out.log" 2>&1
    rc=$?
    # what node1 (the shared directory) and node3 (its node-local one) hold now
    for view in 1 3; do
        if on_host $view find "$out" -name _SUCCESS 2>/dev/null | grep -q .; then bad="$bad; _SUCCESS on node$view"; fi
        for sub in simulation training; do
            st=$(on_host $view "$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['status'])" \
                 "$out/$sub/_manifest.json" 2>/dev/null)
            case $st in complete|converged) bad="$bad; node$view sees $sub $st" ;; esac
        done
    done
    on_host 3 umount "$out" 2>/dev/null
    [ "$rc" != 0 ] || bad="$bad; job exited 0"
    grep -q node3 "$out.log" || bad="$bad; no error naming node3 ($(grep -i -m2 error "$out.log" | tr '\n' ' ' | head -c 200))"
    if [ -n "$bad" ]; then MSG="exit $rc${bad}"; return 1; fi
    MSG="exit $rc; error names node3: $(grep -m1 node3 "$out.log" | head -c 200)"
}

singletons() {  # singletons NAME ENV-PREFIX...: demo as 3 independent processes, one per host
    local name=$1
    shift
    local out=$RUNS/$KIND-$name i rcs="" pids=() all_nonzero=1
    mkdir -p "$out.logs"
    for i in 1 2 3; do
        local -a extra=()
        local v
        for v in "$@"; do extra+=("${v//@RANK@/$((i - 1))}"); done
        on_host "$i" env -i HOME=/root LANG=C.UTF-8 PATH="$V/bin:/usr/bin:/bin" "${extra[@]}" \
            timeout -k 5 120 "$PY" -m cobre_mpi_io demo --output "$out" --scenarios 12 --iterations 2 --quiet \
            > "$out.logs/node$i.log" 2>&1 &
        pids+=($!)
    done
    for i in 0 1 2; do
        wait "${pids[$i]}"
        local rc=$?
        rcs="$rcs $rc"
        [ "$rc" != 0 ] || all_nonzero=0
    done
    local files
    files=$(find "$out" -type f 2>/dev/null | wc -l)
    MSG="exit codes:$rcs; $files files written"
    [ "$all_nonzero" = 1 ] || { MSG="$MSG; a singleton ran the demo: $(grep -h -i -m1 "error\|refus" "$out.logs"/*.log | head -c 200)"; return 1; }
    [ "$files" = 0 ] || { MSG="$MSG: $(find "$out" -type f | sed "s|$out/||" | head -3 | tr '\n' ' ')"; return 1; }
    for i in 1 2 3; do  # refused for the right reason: MPI sees a singleton where the launcher said 3 tasks
        grep -q -i "singleton\|world size 1" "$out.logs/node$i.log" \
            || { MSG="$MSG; node$i did not say why (singleton launch): $(tail -c 200 "$out.logs/node$i.log")"; return 1; }
    done
    MSG="$MSG; $(grep -h -v '^ *$' "$out.logs/node1.log" | tail -1 | head -c 200)"
}
check_singleton_slurm() {
    singletons singleton-slurm SLURM_JOB_ID=4243 SLURM_STEP_ID=0 SLURM_NTASKS=3 SLURM_NPROCS=3 \
        SLURM_STEP_NUM_TASKS=3 SLURM_PROCID=@RANK@ SLURM_NODEID=@RANK@ SLURM_LOCALID=0 SLURM_NNODES=3
}
check_singleton_env() {
    if [ "$KIND" = mpich ]; then
        singletons singleton-env PMI_SIZE=3 PMI_RANK=@RANK@
    else
        singletons singleton-env OMPI_COMM_WORLD_SIZE=3 OMPI_COMM_WORLD_RANK=@RANK@ OMPI_COMM_WORLD_LOCAL_SIZE=1
    fi
}

check_slurm_signal() {
    local scratch=$RUNS/$KIND-slurm out job rc pids=() r t0
    out=$scratch/cobre-run
    mkdir -p "$scratch"
    local -a senv=(SCRATCH="$scratch" SLURM_JOB_ID=4244 SLURM_NTASKS=6 SLURM_NNODES=3 COBRE_VENV=/nonexistent
                   COBRE_DEMO_ARGS="--scenarios 12 --iterations 120 --iteration-seconds 0.05 --checkpoint-every 5")
    local path="$ROOT/scripts/slurm:$V/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
    on_host 1 env -i HOME=/root LANG=C.UTF-8 PATH="$path" MH_STATE="$MH_STATE" "${MPI_ENV[@]}" "${senv[@]}" \
        MPIEXEC="$MPIEXEC" MPIEXEC_NUMPROC_FLAG=-n MPIEXEC_PREFLAGS="$MULTI_PREFLAGS" \
        timeout -k 5 "$JOB_TIMEOUT" bash "$ROOT/scripts/slurm_demo.sbatch" > "$scratch/job1.log" 2>&1 &
    job=$!
    local t=0
    until [ -d "$out/policy/checkpoints" ] && [ "$(ls "$out/policy/checkpoints" | wc -l)" -ge 2 ]; do
        kill -0 "$job" 2>/dev/null || { wait "$job"; MSG="batch script ended early: $(tail -c 300 "$scratch/job1.log")"; return 1; }
        sleep 0.05; t=$((t + 1)); [ $t -lt 2400 ] || { MSG="no checkpoint"; return 1; }
    done
    for r in 0 1 2 3 4 5; do
        local p
        p=$(rank_pid $r "$out") || { MSG="rank $r process not found"; kill "$job"; wait "$job"; return 1; }
        pids+=("$p")
    done
    t0=$(now)
    kill -TERM "${pids[@]}"   # Slurm --signal=TERM@T: every task of the step, on every node; not the batch shell
    wait "$job"
    rc=$?
    local st done meta
    st=$(status_of "$out" training)
    done=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['iterations']['completed'])" \
        "$out/training/_manifest.json" 2>/dev/null)
    meta=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['completed_iterations'])" \
        "$out/policy/metadata.json" 2>/dev/null)
    MSG="SIGTERM to 6 ranks on 3 hosts: script exit $rc after $(secs "$t0" "$(now)")s, training $st at iteration ${done:-?}, policy checkpoint ${meta:-?}"
    [ "$rc" != 0 ] || { MSG="$MSG; script exited 0"; return 1; }
    [ "$st" = interrupted ] || { MSG="$MSG; not interrupted: $(tail -c 300 "$scratch/job1.log")"; return 1; }
    [ -n "$done" ] && [ "$done" = "$meta" ] && [ "$done" -ge 10 ] && [ "$done" -lt 120 ] \
        || { MSG="$MSG; checkpoint does not hold the last completed iteration"; return 1; }
    [ ! -e "$out/training/_SUCCESS" ] || { MSG="$MSG; training/_SUCCESS written"; return 1; }
    wait_gone 30 "${pids[@]}" > /dev/null || { MSG="$MSG; ranks still there 30 s after the job"; return 1; }
    on_host 1 env -i HOME=/root LANG=C.UTF-8 PATH="$path" MH_STATE="$MH_STATE" "${MPI_ENV[@]}" "${senv[@]}" \
        MPIEXEC="$MPIEXEC" MPIEXEC_NUMPROC_FLAG=-n MPIEXEC_PREFLAGS="$MULTI_PREFLAGS" \
        timeout -k 5 "$JOB_TIMEOUT" bash "$ROOT/scripts/slurm_demo.sbatch" > "$scratch/job2.log" 2>&1 &
    wait $!
    rc=$?
    [ "$rc" = 0 ] || { MSG="$MSG; re-submission exit $rc: $(tail -c 300 "$scratch/job2.log")"; return 1; }
    grep -q -- "--resume" "$scratch/job2.log" || { MSG="$MSG; re-submission did not resume"; return 1; }
    [ -e "$out/simulation/_SUCCESS" ] && [ -e "$out/training/_SUCCESS" ] || { MSG="$MSG; not complete after resume"; return 1; }
    MSG="$MSG; re-submission resumed: training $(status_of "$out" training), simulation $(status_of "$out" simulation), valid"
}

# ----------------------------------------------------------------------------------------------- main
T_ALL=$(now)
for kind in $MPI_KINDS; do
    if [ ! -x "$(mpi_venv "$kind")/bin/python" ] || [ ! -x "$(mpi_venv "$kind")/bin/mpiexec" ]; then
        echo "== setting up the $kind venv"
        mpi_setup_venv "$kind" "" || { echo "multihost_check: cannot set up the $kind venv" >&2; exit 2; }
    fi
done
echo "== 3 emulated hosts on $MH_NET.0/24 (namespaces ${P}-*)"
setup_hosts || { echo "multihost_check: host setup failed" >&2; exit 2; }
for KIND in $MPI_KINDS; do
    set_launcher "$KIND"
    REF=""
    echo "== $KIND: $MPIEXEC -n 6 $MULTI_PREFLAGS ${MPI_ENV[*]}"
    run_check "$KIND" isolation check_isolation
    run_check "$KIND" placement check_placement
    run_check "$KIND" run check_run
    run_check "$KIND" fail-fast check_fail_fast
    run_check "$KIND" sigkill check_sigkill
    run_check "$KIND" node-local check_node_local
    run_check "$KIND" singleton-slurm check_singleton_slurm
    run_check "$KIND" singleton-env check_singleton_env
    run_check "$KIND" slurm-signal check_slurm_signal
done
echo "== summary ($(secs "$T_ALL" "$(now)")s)"
printf '%s\n' "${RESULTS[@]}"
echo "$(printf '%s\n' "${RESULTS[@]}" | grep -c '^PASS') passed, $(printf '%s\n' "${RESULTS[@]}" | grep -c '^FAIL') failed"
exit "$FAILED"
