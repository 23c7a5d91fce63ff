#!/bin/sh
# Copy deblurd's results off the device, consistently even while the daemon writes and prunes:
# every line of the copied index.jsonl names files that are in the copy, and no temporary file is copied.
#
#   deploy/copy-results.sh pi@deblurd.local:/var/lib/deblurd/output/ ./deblurd-output/
#
# Files first, the index last: a result's files are complete before its index line is written, and the daemon
# never removes a result younger than 5 minutes, so step 3 finds the files of every line the step-2 index holds.
# Hidden names (.*) are the daemon's temporary files. Exit status 24 from rsync means old results were removed
# by retention while copying; they are no longer in the index either, so the copy is still consistent.
set -eu
if [ $# -ne 2 ]; then
    echo "usage: $0 SOURCE DESTINATION   (e.g. pi@deblurd.local:/var/lib/deblurd/output/ ./deblurd-output/)" >&2
    exit 64
fi
src=${1%/}/
dst=${2%/}/
copy() { rsync -a --exclude='.*' "$@" || [ $? -eq 24 ]; }
mkdir -p "$dst"
copy --exclude=/index.jsonl "$src" "$dst"           # 1. the results' files
copy "${src}index.jsonl" "${dst}.index.jsonl.part"  # 2. the index as it is now
copy --exclude=/index.jsonl "$src" "$dst"           # 3. the files of results indexed since step 1
mv "${dst}.index.jsonl.part" "${dst}index.jsonl"    # 4. the index, last
