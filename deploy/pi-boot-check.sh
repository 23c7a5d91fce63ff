#!/usr/bin/env bash
# The deblurd unit under a real systemd: boots the rootfs deploy/pi-rehearsal.sh left (install.sh has installed and
# enabled the unit there) with systemd-nspawn --boot and checks that the service starts at boot, says READY, pings
# the watchdog, restarts after SIGKILL, stops within TimeoutStopSec leaving status "stopped", logs to journald,
# and that a bad config exits 78 and is not restarted.
#
#   sudo deploy/pi-boot-check.sh      after sudo deploy/pi-rehearsal.sh
set -euo pipefail

CACHE=${DEBLURD_REHEARSAL_CACHE:-/var/cache/deblurd-rehearsal}
ROOTFS=$CACHE/rootfs
LOG=$CACHE/nspawn.log
STATUS_FILE=/var/lib/deblurd/output/status.json
FAILED=0
NSPAWN_PID=""

say() { printf '==> %s\n' "$*"; }
die() { printf 'pi-boot-check.sh: %s\n' "$*" >&2; exit 1; }
check() {
    local what=$1
    shift
    if "$@"; then printf 'ok      %s\n' "$what"; else printf 'FAILED  %s\n' "$what"; FAILED=1; fi
}

[ "$(id -u)" -eq 0 ] || die "run as root"
[ -x "$ROOTFS/opt/deblurd/venv/bin/deblurd" ] || die "no installed rootfs at $ROOTFS: run deploy/pi-rehearsal.sh first"
command -v systemd-nspawn >/dev/null || die "systemd-nspawn is missing: apt-get install systemd-container"

# The unit's config: the rehearsal's (replay source, no GPIO), since this container has no camera and no pins.
cp "$ROOTFS/etc/deblurd/deblurd.toml" "$ROOTFS/etc/deblurd/deblurd.toml.shipped"
cp "$ROOTFS/etc/deblurd/rehearsal.toml" "$ROOTFS/etc/deblurd/deblurd.toml"

# What qemu-user cannot emulate, lifted for this boot only by a drop-in (named here; the host's tests check these
# settings with systemd-analyze): a new network namespace fails with EIO, seccomp filters would judge qemu's own
# host-architecture system calls, and qemu's code generator needs writable and executable memory. Start-up and
# the watchdog get the time that emulation (tens of times slower) needs.
DROPIN=$ROOTFS/etc/systemd/system/deblurd.service.d/rehearsal-emulation.conf
mkdir -p "$(dirname "$DROPIN")"
cat >"$DROPIN" <<'UNIT'
[Service]
PrivateNetwork=no
RestrictNamespaces=no
MemoryDenyWriteExecute=no
SystemCallFilter=
SystemCallArchitectures=
TimeoutStartSec=1200
WatchdogSec=1200
UNIT
for lifted in PrivateNetwork RestrictNamespaces MemoryDenyWriteExecute SystemCallFilter SystemCallArchitectures \
    "TimeoutStartSec (1200 s)" "WatchdogSec (1200 s)"; do
    printf 'skip    %s: lifted under qemu-user emulation\n' "$lifted"
done

stop_container() {
    if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
        kill -TERM "$NSPAWN_PID" 2>/dev/null || true
        sleep 5
        kill -KILL "$NSPAWN_PID" 2>/dev/null || true
    fi
    mv -f "$ROOTFS/etc/deblurd/deblurd.toml.shipped" "$ROOTFS/etc/deblurd/deblurd.toml"
    rm -f "$DROPIN"
}
trap stop_container EXIT

say "booting $ROOTFS with systemd-nspawn (log: $LOG)"
# The host's CPU lists hidden: with them and the host's /proc/cpuinfo, LiteRT's arm64 cpuinfo parses an x86
# machine and XNNPACK segfaults under qemu (see deploy/pi-rehearsal.sh).
nice -n 10 systemd-nspawn --quiet --register=no --keep-unit --boot --directory="$ROOTFS" --machine=deblurd-rehearsal \
    --tmpfs=/sys/devices/system/cpu >"$LOG" 2>&1 </dev/null &
NSPAWN_PID=$!

LEADER=""
for _ in $(seq 1 60); do
    LEADER=$(pgrep -P "$NSPAWN_PID" | head -n 1 || true)
    [ -n "$LEADER" ] && break
    kill -0 "$NSPAWN_PID" 2>/dev/null || { cat "$LOG"; die "systemd-nspawn exited: see above"; }
    sleep 1
done
[ -n "$LEADER" ] || die "no container init after 60 s (log: $LOG)"

inside() { nsenter --target "$LEADER" --all env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
prop() { inside systemctl show deblurd.service -P "$1"; }

wait_for() {
    local seconds=$1
    shift
    for _ in $(seq 1 "$seconds"); do "$@" && return 0; sleep 1; done
    return 1
}
active() { [ "$(prop ActiveState)" = active ]; }
settled() { [ "$(prop ActiveState)" != activating ] && [ "$(prop ActiveState)" != deactivating ]; }

say "waiting for boot and for deblurd (Type=notify: active means READY=1 arrived)"
check "starts at boot and says READY (ActiveState=active)" wait_for 1200 active
check "status text from sd_notify: $(prop StatusText)" test -n "$(prop StatusText)"
check "pings the watchdog (WatchdogTimestamp set)" wait_for 120 test -n "$(prop WatchdogTimestamp)"
check "logs to journald" test -n "$(inside journalctl -u deblurd.service -o cat --no-pager | head -n 3)"

before=$(prop MainPID)
inside systemctl kill --signal=KILL deblurd.service
sleep 2
wait_for 120 active || true
check "restarts after SIGKILL (NRestarts=$(prop NRestarts))" test "$(prop NRestarts)" = 1
check "new main process after the restart" test "$(prop MainPID)" != "$before"

start=$SECONDS
inside systemctl stop deblurd.service
took=$((SECONDS - start))
check "stops within TimeoutStopSec ($(prop TimeoutStopUSec)): took ${took} s" test "$took" -le 30
check "exit status 0 on stop (Result=$(prop Result))" test "$(prop Result)" = success
check "status file says stopped" grep -q '"state": *"stopped"' "$ROOTFS$STATUS_FILE"

printf '[camera]\nsource = "nonsense"\n' >"$ROOTFS/etc/deblurd/deblurd.toml"
inside systemctl start deblurd.service || true
wait_for 60 settled || true
sleep 8  # longer than RestartSec: a restart would have happened by now
# A manual start resets NRestarts, so any restart from here on shows.
check "bad config exits 78 (ExecMainStatus=$(prop ExecMainStatus))" test "$(prop ExecMainStatus)" = 78
check "and is not restarted (ActiveState=$(prop ActiveState), NRestarts=$(prop NRestarts))" \
    test "$(prop ActiveState)" = failed -a "$(prop NRestarts)" = 0

[ "$FAILED" -eq 0 ] || die "some checks failed (container log: $LOG)"
say "the unit behaves under systemd"
