#!/usr/bin/env bash
# Rehearse the Raspberry Pi install before there is a Pi: arm64 Debian bookworm under qemu-user emulation.
#
#   sudo deploy/pi-rehearsal.sh [--host-python PY] [--no-parity | --parity-only]
#
# Builds (once, cached in $DEBLURD_REHEARSAL_CACHE, default /var/cache/deblurd-rehearsal) an arm64 bookworm rootfs,
# copies it fresh for each run, copies the project in and runs deploy/install.sh as a user would, then deblurd
# doctor, check-config, run --frames 20 on the replay source, deblur on the bundled samples, and the int8 parity
# of every shipped model against this machine (tools/bench/parity.py). Each step prints its time; any failure
# exits non-zero. --parity-only reruns just the parity step on the rootfs the last run left, with this tree's code.
# Needs root, qemu-user-static, binfmt-support and mmdebstrap. See docs/pi-rehearsal.md.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${DEBLURD_REHEARSAL_CACHE:-/var/cache/deblurd-rehearsal}
BASE=$CACHE/base-arm64
ROOTFS=$CACHE/rootfs
MIRROR=${DEBLURD_REHEARSAL_MIRROR:-http://deb.debian.org/debian}
# What Raspberry Pi OS Lite already has, and the Debian part of install.sh's packages (so its apt step is quick).
BASE_PACKAGES=systemd,systemd-sysv,dbus,python3,python3-venv,python3-pip,python3-systemd,python3-gpiozero,python3-numpy,rsync,ca-certificates
# Doctor checks that need the Pi's hardware or firmware: failures and warnings of these are named skips.
PI_ONLY_CHECKS=" gpio camera lens fan power thermal "
CA_FILE=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
HOST_PYTHON=python3
PARITY=1
PARITY_ONLY=0
# The Pi 5's cores (4 x Cortex-A76): qemu's default "max" CPU has features a Pi lacks, for which XNNPACK picks int8
# kernels that qemu 7.2 computes wrongly (outputs off by up to 255 levels).
PI_CPU=cortex-a76
VENV_BIN=/opt/deblurd/venv/bin
SKIP_LOG=$CACHE/skips.txt
TIMES=()

while [ $# -gt 0 ]; do
    case "$1" in
        --host-python) HOST_PYTHON=$2; shift ;;
        --no-parity) PARITY=0 ;;
        --parity-only) PARITY_ONLY=1 ;;
        -h|--help) sed -n '2,12s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "pi-rehearsal.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

say() { printf '==> %s\n' "$*"; }
die() { printf 'pi-rehearsal.sh: %s\n' "$*" >&2; exit 1; }
# Steps run in subshells, so the skips they name are collected in a file.
skip() { printf '%s\n' "$*" >>"$SKIP_LOG"; printf 'SKIP %s\n' "$*"; }

# Run one named step and print its time; stop the rehearsal when it fails.
step() {
    local name=$1 start=$SECONDS status=0
    shift
    say "step: $name"
    # A subshell outside any || list, so that set -e stops the step at its first failing command.
    set +e
    (set -e; "$@")
    status=$?
    set -e
    TIMES+=("$(printf '%-28s %4d s  %s' "$name" $((SECONDS - start)) "$([ $status -eq 0 ] && echo ok || echo FAILED)")")
    if [ $status -ne 0 ]; then
        summary
        die "step '$name' failed (exit $status)"
    fi
}

summary() {
    say "timings"
    printf '  %s\n' "${TIMES[@]}"
    if [ -s "$SKIP_LOG" ]; then
        say "skipped (need the Raspberry Pi archive, firmware or hardware)"
        sed 's/^/  /' "$SKIP_LOG"
    fi
}

# A command in the arm64 rootfs, with a clean environment as a user's root shell has.
in_rootfs() {
    nice -n 10 chroot "$ROOTFS" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 PIP_CERT=/etc/ssl/certs/rehearsal-ca.pem QEMU_CPU=$PI_CPU "$@"
}

as_service_user() { in_rootfs runuser -u deblurd -- "$@"; }

prerequisites() {
    [ "$(id -u)" -eq 0 ] || die "run as root (chroot, mounts and binfmt_misc need it): sudo make pi-rehearsal"
    local tool
    for tool in mmdebstrap qemu-aarch64-static update-binfmts chroot; do
        command -v "$tool" >/dev/null ||
            die "$tool is missing: apt-get install qemu-user-static binfmt-support mmdebstrap"
    done
    if ! mountpoint -q /proc/sys/fs/binfmt_misc; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc ||
            die "cannot mount binfmt_misc (a container needs --privileged for arm64 emulation)"
    fi
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64
    grep -q '^flags: .*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 ||
        die "qemu-aarch64 is registered without the F flag: the chroot cannot find the emulator"
    [ -r "$CA_FILE" ] || die "no CA file at $CA_FILE for pip inside the rootfs: set PIP_CERT"
}

build_base() {
    if [ -e "$BASE/etc/os-release" ]; then
        say "reusing the cached rootfs $BASE"
        return
    fi
    rm -rf "$BASE.tmp"
    mkdir -p "$CACHE"
    nice -n 10 mmdebstrap --arch=arm64 --variant=minbase --include="$BASE_PACKAGES" bookworm "$BASE.tmp" "$MIRROR"
    mv "$BASE.tmp" "$BASE"
}

unmount_rootfs() {
    local point
    for point in dev/pts dev proc/cpuinfo sys/devices/system/cpu proc root/.cache/pip; do
        if mountpoint -q "$ROOTFS/$point"; then umount -l "$ROOTFS/$point"; fi
    done
}

# The project (the files git tracks or would track) in /root/deblurd, replacing an earlier copy.
copy_project() {
    rm -rf "$ROOTFS/root/deblurd"
    mkdir -p "$ROOTFS/root/deblurd"
    (cd "$REPO" && git ls-files -z --cached --others --exclude-standard |
        tar --null --files-from=- --ignore-failed-read -cf - 2>/dev/null) | tar -xf - -C "$ROOTFS/root/deblurd"
}

# The CPU a Pi 5 shows its programs. LiteRT's XNNPACK reads it with cpuinfo: from the host's x86 /proc/cpuinfo and
# /sys lists it segfaults, and without the lists it stays out silently, leaving int8 to TFLite's builtin kernels,
# which round differently on Arm and x86 (docs/pi-rehearsal.md). So: the Pi 5's /proc/cpuinfo, its CPU lists, and
# the same core for qemu (QEMU_CPU in in_rootfs).
pi5_cpu_view() {
    local cpu
    for cpu in 0 1 2 3; do
        printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics' "$cpu"
        printf ' fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\n'
        printf 'CPU variant\t: 0x4\nCPU part\t: 0xd0b\nCPU revision\t: 1\n\n'
    done >"$CACHE/pi5-cpuinfo"
    printf 'Revision\t: c04170\nModel\t\t: Raspberry Pi 5 Model B Rev 1.0\n' >>"$CACHE/pi5-cpuinfo"
    mount --bind "$CACHE/pi5-cpuinfo" "$ROOTFS/proc/cpuinfo"
    mkdir -p "$ROOTFS/sys/devices/system/cpu"
    mount -t tmpfs -o size=64k,mode=0755 tmpfs "$ROOTFS/sys/devices/system/cpu"
    for cpu in possible present online; do echo 0-3 >"$ROOTFS/sys/devices/system/cpu/$cpu"; done
}

# /proc with the Pi 5's CPU view, /dev, and the pip cache. No more of /sys: apt and pip need only /proc.
mount_rootfs() {
    unmount_rootfs
    mkdir -p "$ROOTFS/root/.cache/pip" "$CACHE/pip"
    mount -t proc proc "$ROOTFS/proc"
    pi5_cpu_view
    mount --bind /dev "$ROOTFS/dev"
    mount --bind /dev/pts "$ROOTFS/dev/pts"
    mount --bind "$CACHE/pip" "$ROOTFS/root/.cache/pip"
}

# A fresh copy of the base (a Pi just flashed) with the project, mounted.
fresh_rootfs() {
    unmount_rootfs
    rm -rf "$ROOTFS"
    cp -a "$BASE" "$ROOTFS"
    copy_project
    install -m 0644 "$CA_FILE" "$ROOTFS/etc/ssl/certs/rehearsal-ca.pem"
    install -m 0644 /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
    mount_rootfs
}

# The rootfs a full run left, mounted again with this tree's project (--parity-only).
reuse_rootfs() {
    [ -x "$ROOTFS$VENV_BIN/python" ] || die "no installed rootfs at $ROOTFS: run sudo make pi-rehearsal once first"
    mount_rootfs
    copy_project
}

# install.sh as a user runs it. Its self-check fails here only on the Pi's hardware (see the doctor step).
install_sh() {
    local log=$CACHE/install.log status=0
    in_rootfs bash /root/deblurd/deploy/install.sh 2>&1 | tee "$log" || status=$?
    if [ "$status" -ne 0 ] && grep -q "self-check found problems" "$log" &&
        [ -x "$ROOTFS$VENV_BIN/deblurd" ]; then
        skip "install.sh self-check: exit $status for the Pi hardware checks the doctor step names"
        status=0
    fi
    grep -o 'not Raspberry Pi OS: .* are not' "$log" | sed 's/^not Raspberry Pi OS: /apt: /;s/ are not$//' |
        while read -r line; do skip "$line (only in the Raspberry Pi archive)"; done
    return "$status"
}

# The doctor on the shipped config: any failure outside the Pi-only checks fails the rehearsal.
doctor() {
    local report status=0 level name detail bad=0
    report=$(as_service_user "$VENV_BIN/deblurd" doctor --config /etc/deblurd/deblurd.toml --json) || status=$?
    while IFS=$'\t' read -r level name detail; do
        printf '  %-8s %-9s %s\n' "$level" "$name" "$detail"
        [ "$level" = ok ] && continue
        if [[ "$PI_ONLY_CHECKS" == *" $name "* ]]; then
            skip "doctor $name ($level): $detail"
        elif [ "$level" = failed ]; then
            bad=1
        fi
    done < <(printf '%s' "$report" | python3 -c '
import json, sys
for c in json.load(sys.stdin)["checks"]:
    print(c["level"], c["name"], c["detail"].replace("\t", " "), sep="\t")')
    [ "$bad" -eq 0 ] || { echo "doctor: failures beyond the Pi hardware (exit $status)" >&2; return 1; }
}

check_config() { in_rootfs "$VENV_BIN/deblurd" check-config /etc/deblurd/deblurd.toml; }

# The shipped config with the replay source and without GPIO (lgpio on real pins needs a Pi).
run_replay() {
    sed -e 's/^source = "auto"/source = "replay"/' \
        -e '/^\[gpio\]/,/^\[/s/^enabled = true/enabled = false/' \
        "$ROOTFS/etc/deblurd/deblurd.toml" >"$ROOTFS/etc/deblurd/rehearsal.toml"
    grep -q '^source = "replay"' "$ROOTFS/etc/deblurd/rehearsal.toml" || die "could not set camera.source = replay"
    skip "gpio: deblurd run with gpio.enabled = false (lgpio on real pins)"
    as_service_user "$VENV_BIN/deblurd" run --config /etc/deblurd/rehearsal.toml --frames 20 \
        --output /var/lib/deblurd/rehearsal-run
    local results
    results=$(find "$ROOTFS/var/lib/deblurd/rehearsal-run" -name '*.json' | wc -l)
    say "run wrote $results JSON file(s)"
    [ "$results" -gt 0 ]
}

deblur_samples() {
    local samples
    samples=$(in_rootfs "$VENV_BIN/python" -c 'from deblurd.capture.camera import SAMPLES_DIR; print(SAMPLES_DIR)')
    as_service_user "$VENV_BIN/deblurd" deblur --config /etc/deblurd/rehearsal.toml \
        -o /var/lib/deblurd/rehearsal-deblur "$samples"
}

# The shipped models here and in the rootfs on the same inputs (tools/bench/parity.py).
parity() {
    (cd "$REPO" && PYTHONPATH=$REPO "$HOST_PYTHON" -m tools.bench.parity run "$CACHE/parity-host.npz")
    cp "$CACHE/parity-host.npz" "$ROOTFS/root/parity-host.npz"
    in_rootfs sh -c 'cd /root/deblurd && PYTHONPATH=/root/deblurd '"$VENV_BIN"'/python -m tools.bench.parity run \
        /root/parity-arm64.npz --inputs /root/parity-host.npz'
    cp "$ROOTFS/root/parity-arm64.npz" "$CACHE/parity-arm64.npz"
    (cd "$REPO" && PYTHONPATH=$REPO "$HOST_PYTHON" -m tools.bench.parity compare "$CACHE/parity-host.npz" \
        "$CACHE/parity-arm64.npz")
}

trap unmount_rootfs EXIT
TOTAL=$SECONDS
mkdir -p "$CACHE"
: >"$SKIP_LOG"
step "prerequisites" prerequisites
if [ "$PARITY_ONLY" -eq 1 ]; then
    step "reuse rootfs + project" reuse_rootfs
    step "int8 parity arm64 vs host" parity
    summary
    say "parity passed"
    exit 0
fi
step "rootfs (build or reuse)" build_base
step "fresh copy + project" fresh_rootfs
step "install.sh" install_sh
step "deblurd doctor" doctor
step "deblurd check-config" check_config
step "deblurd run --frames 20" run_replay
step "deblurd deblur samples" deblur_samples
if [ "$PARITY" -eq 1 ]; then step "int8 parity arm64 vs host" parity; fi
TIMES+=("$(printf '%-28s %4d s' total $((SECONDS - TOTAL)))")
summary
say "rehearsal passed"
