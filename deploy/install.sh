#!/usr/bin/env bash
# Install deblurd on Raspberry Pi OS Bookworm (Raspberry Pi 5 + Camera Module 3), as a systemd service.
#
#   sudo deploy/install.sh              install or update (safe to run again)
#   sudo deploy/install.sh --uninstall  remove the service, program and venv; keep config and results
#   sudo deploy/install.sh --uninstall --purge   also remove /etc/deblurd, /var/lib/deblurd and the user
#   deploy/install.sh --dry-run         print every action without doing it
#   deploy/install.sh --root DIR        install the files under DIR (tests, image building): apt, the
#                                       user, the venv, starting the service and the self-check are skipped
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
APT_PACKAGES=(python3-venv python3-pip python3-picamera2 python3-libcamera python3-systemd python3-gpiozero
              python3-lgpio python3-numpy rpicam-apps raspi-utils rsync)
# Only the Raspberry Pi archive has these. Elsewhere (plain Debian arm64: deploy/pi-rehearsal.sh) they are left out
# and the daemon runs without them: no camera (it replays sample frames), no GPIO button or LED (lgpio), no
# throttle flags (vcgencmd); `deblurd doctor` names each.
PI_ARCHIVE_PACKAGES=(python3-picamera2 python3-libcamera python3-lgpio rpicam-apps raspi-utils)
SERVICE=deblurd
USER_NAME=deblurd
GROUPS_WANTED=(video gpio)

ROOT=""
DRY_RUN=0
UNINSTALL=0
PURGE=0

usage() {
    sed -n '2,10s/^# \{0,1\}//p' "$0"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --uninstall) UNINSTALL=1 ;;
        --purge) PURGE=1 ;;
        --root)
            [ $# -ge 2 ] || { echo "install.sh: --root needs a folder" >&2; exit 2; }
            ROOT=$(realpath -m "$2")
            shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

PREFIX=$ROOT/opt/deblurd
VENV=$PREFIX/venv
MODELS=$PREFIX/models
CONF_DIR=$ROOT/etc/deblurd
CONF=$CONF_DIR/deblurd.toml
STATE_DIR=$ROOT/var/lib/deblurd
UNIT=$ROOT/etc/systemd/system/$SERVICE.service

say() { printf '==> %s\n' "$*"; }

# Print an action, then do it unless --dry-run.
run() {
    printf '+ %s\n' "$*"
    [ "$DRY_RUN" -eq 1 ] || "$@"
}

# Steps that change the running system rather than files under --root.
on_system() { [ -z "$ROOT" ]; }

# systemd is PID 1 (sd_booted); not in a chroot or an image build, where the unit is enabled for the next boot.
# A dry run prints the steps of a booted Pi.
systemd_running() { [ "$DRY_RUN" -eq 1 ] || [ -d /run/systemd/system ]; }

skip_under_root() { say "skipped under --root: $*"; }

preflight() {
    if [ "$DRY_RUN" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
        echo "install.sh: run as root (sudo deploy/install.sh), or try --dry-run" >&2
        exit 1
    fi
    if on_system; then
        # shellcheck disable=SC1091
        codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-unknown}")
        [ "$codename" = bookworm ] || say "warning: written for Raspberry Pi OS Bookworm, this is $codename"
        [ "$(uname -m)" = aarch64 ] || say "warning: expected a 64-bit Raspberry Pi (aarch64), this is $(uname -m)"
    fi
}

# apt can install the package from this system's archives.
has_candidate() { apt-cache policy "$1" 2>/dev/null | grep -q '^ *Candidate: [^(]'; }

install_packages() {
    if ! on_system; then skip_under_root "apt-get install ${APT_PACKAGES[*]}"; return; fi
    say "system packages (picamera2 and libcamera come from apt; pip builds of them do not work)"
    run apt-get update
    local wanted=() missing=() package
    for package in "${APT_PACKAGES[@]}"; do
        if [ "$DRY_RUN" -eq 0 ] && [[ " ${PI_ARCHIVE_PACKAGES[*]} " == *" $package "* ]] &&
            ! has_candidate "$package"; then
            missing+=("$package")
        else
            wanted+=("$package")
        fi
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "warning: not Raspberry Pi OS: ${missing[*]} are not in this system's archives (the Raspberry Pi" \
            "archive has them); installing without them: no camera (the daemon replays sample frames), no GPIO" \
            "button or LED (set gpio.enabled = false), no throttle flags. deblurd doctor names each."
    fi
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${wanted[@]}"
}

create_user() {
    if ! on_system; then skip_under_root "create user $USER_NAME (groups ${GROUPS_WANTED[*]})"; return; fi
    say "service user $USER_NAME"
    if ! id "$USER_NAME" >/dev/null 2>&1; then
        run useradd --system --user-group --home-dir /var/lib/deblurd --no-create-home \
            --shell /usr/sbin/nologin "$USER_NAME"
    fi
    local group
    for group in "${GROUPS_WANTED[@]}"; do
        if ! getent group "$group" >/dev/null; then
            # The unit's SupplementaryGroups= names it: without the group systemd cannot start the service at all
            # (status 216/GROUP). Raspberry Pi OS has both; elsewhere an empty system group does no harm.
            say "group $group does not exist (not Raspberry Pi OS?): creating it, so that the unit can start"
            run groupadd --system "$group"
        fi
        run usermod -a -G "$group" "$USER_NAME"
    done
}

install_files() {
    say "program files in $PREFIX"
    run install -d -m 0755 "$PREFIX" "$CONF_DIR" "$STATE_DIR" "$(dirname "$UNIT")"
    run rm -rf "$MODELS"
    run cp -a "$SRC/models" "$MODELS"
    run install -m 0644 "$SRC/README.md" "$PREFIX/README.md"
    run install -m 0644 "$SRC/deploy/constraints-pi.txt" "$PREFIX/constraints.txt"
    if on_system; then
        run chown "$USER_NAME:$USER_NAME" "$STATE_DIR"
    fi
}

install_venv() {
    if ! on_system; then skip_under_root "venv $VENV and pip install"; return; fi
    say "venv $VENV (sees the apt picamera2, libcamera, lgpio and systemd modules; keeps numpy 1.x)"
    if [ ! -x "$VENV/bin/python" ]; then
        run python3 -m venv --system-site-packages "$VENV"
    fi
    local pip=("$VENV/bin/pip" install --quiet --constraint "$PREFIX/constraints.txt")
    run "${pip[@]}" --upgrade pip
    if run "${pip[@]}" ai-edge-litert; then
        run "${pip[@]}" "$SRC"
    else
        say "ai-edge-litert has no build for this system: using tflite-runtime"
        run "${pip[@]}" tflite-runtime "pydantic>=2.5" "opencv-python-headless>=4.8" "pillow>=9.4" "tqdm>=4.64"
        run "${pip[@]}" --no-deps "$SRC"
    fi
}

install_config() {
    say "config $CONF"
    if [ ! -e "$CONF" ]; then
        run install -m 0644 "$SRC/deploy/deblurd.toml" "$CONF"
    elif cmp -s "$SRC/deploy/deblurd.toml" "$CONF"; then
        say "config unchanged"
    else
        say "keeping your edited $CONF; the shipped default is written to $CONF.new for comparison"
        run install -m 0644 "$SRC/deploy/deblurd.toml" "$CONF.new"
    fi
}

install_unit() {
    say "systemd unit $UNIT"
    run install -m 0644 "$SRC/systemd/deblurd.service" "$UNIT"
    if on_system; then
        if systemd_running; then run systemctl daemon-reload; fi
        run systemctl enable "$SERVICE.service"
    else
        run systemctl --root="$ROOT" enable "$SERVICE.service"
    fi
}

check_and_start() {
    if ! on_system; then skip_under_root "deblurd doctor and starting $SERVICE"; return; fi
    say "self-check as $USER_NAME (the camera is free while the service is stopped)"
    local status=0
    if ! systemd_running; then
        run runuser -u "$USER_NAME" -- "$VENV/bin/deblurd" doctor --config /etc/deblurd/deblurd.toml || status=$?
        say "systemd is not running here (a chroot or an image build): $SERVICE is enabled and starts at boot"
    else
        run systemctl stop "$SERVICE.service"
        run runuser -u "$USER_NAME" -- "$VENV/bin/deblurd" doctor --config /etc/deblurd/deblurd.toml || status=$?
        say "starting $SERVICE"
        run systemctl start "$SERVICE.service"
        if [ "$DRY_RUN" -eq 0 ]; then
            sleep 3
            systemctl --no-pager --lines=5 status "$SERVICE.service" || status=1
        fi
    fi
    if [ "$status" -eq 0 ]; then
        say "installed. Follow it with: journalctl -u $SERVICE -f ; results in /var/lib/deblurd/output"
    else
        say "installed, but the self-check found problems (see the fix lines above)"
    fi
    return "$status"
}

uninstall() {
    say "removing $SERVICE"
    if on_system; then
        run systemctl disable --now "$SERVICE.service" || true
    elif [ -e "$UNIT" ]; then
        run systemctl --root="$ROOT" disable "$SERVICE.service"
    fi
    run rm -f "$UNIT"
    if on_system; then run systemctl daemon-reload; fi
    run rm -rf "$PREFIX"
    if [ "$PURGE" -eq 1 ]; then
        run rm -rf "$CONF_DIR" "$STATE_DIR"
        if on_system && id "$USER_NAME" >/dev/null 2>&1; then run userdel "$USER_NAME"; fi
    else
        say "kept $CONF_DIR and $STATE_DIR (results); add --purge to remove them and the $USER_NAME user"
    fi
}

preflight
if [ "$UNINSTALL" -eq 1 ]; then
    uninstall
    exit 0
fi
install_packages
create_user
install_files
install_venv
install_config
install_unit
check_and_start
