#!/usr/bin/env bash
# On a lent GPU, in one device call: install the wheels `python -m tools.train.bundle` carried, train the jobs under
# Keras on JAX with the synthesis on the device, and leave each run's tar and the log in $OUT, the folder a device
# call brings back. Unpack the tars under runs/ here; docs/models.md says how the gate then decides.
#
#   bash tools/train/on_device.sh [ROLE:ARCH:SECONDS ...] [-- more tools.train.gpu train arguments]
#
# Without jobs it trains the non-blind pack: the radius mapper (warm from .devdata/init), then both Wiener refiners,
# 390 s of training that fits one 600 s call with start-up, compiles and validation.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${OUT:?set OUT to the folder whose files come back}"
PYTHON=${PYTHON:-python3}
WHEELS=${WHEELS:-.whl}
DEVDATA=${DEVDATA:-.devdata}

jobs=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    jobs+=(--job "$1")
    shift
done
if [ "${1:-}" = "--" ]; then
    shift
fi
if [ ${#jobs[@]} -eq 0 ]; then
    jobs=(--job classifier:mapper-radius:120 --job semi:nonblind-wiener:120 --job heavy:nonblind-heavy-wiener:150)
fi

export PYTHONPATH=$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1
if [ -d "$WHEELS" ]; then
    site=$(mktemp -d)
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
        "$WHEELS"/*.whl
    PYTHONPATH=$site:$PYTHONPATH
fi
if [ -d "$DEVDATA/photos" ]; then
    export DEBLURD_PHOTOS=$DEVDATA/photos
fi
init=()
if [ -d "$DEVDATA/init" ]; then
    init=(--init-dir "$DEVDATA/init")
fi

work=$(mktemp -d)
started=$SECONDS
# Each run's tar goes to $OUT as soon as it is written, so a call cut off at its limit still brings back the jobs
# that finished.
(while sleep 2; do cp -n "$work"/*.tar "$OUT"/ 2>/dev/null || true; done) &
copier=$!
trap 'kill "$copier" 2>/dev/null || true' EXIT
"$PYTHON" -m tools.train.gpu train --out "$work" --synth device "${init[@]}" "${jobs[@]}" "$@" 2>&1 |
    tee "$OUT/train.log"
cp "$work"/*.tar "$OUT"/
echo "on_device: $((SECONDS - started)) s; $(cd "$OUT" && echo ./*.tar) in \$OUT" | tee -a "$OUT/train.log"
