#!/bin/sh
# Copy deblurd's results off the device, consistently even while the daemon writes and prunes:
# every line of the copied index.jsonl names files that are in the copy, no temporary file is copied, and the
# copy's gallery (index.html) shows exactly the results its index lists.
#
#   deploy/copy-results.sh pi@deblurd.local:/var/lib/deblurd/output/ ./deblurd-output/
#   deploy/copy-results.sh --mirror pi@deblurd.local:/var/lib/deblurd/output/ ./deblurd-output/
#
# Files first, the index last: a result's files are complete before its index line is written, and the daemon
# never removes a result younger than 5 minutes, so step 3 finds the files of every line the step-2 index holds.
# Hidden names (.*) are the daemon's temporary files. Exit status 24 from rsync means old results were removed
# by retention while copying; they are no longer in the index either, so the copy is still consistent.
# The daemon refreshes its gallery every few seconds, so the copied one may lag the copied index: step 5 writes
# the copy's gallery from the copy's own index, with this checkout's deblurd/output/gallery.py (python3 and its
# standard library only, no install needed).
set -eu
usage() {
    cat <<EOF
usage: $0 [--mirror] SOURCE DESTINATION
  Copy a deblurd output folder (rsync, also over SSH) so that the copy's index, files and gallery agree.
  Run it again into the same DESTINATION to add what is new.

  --mirror   also delete from DESTINATION the results the daemon has pruned (retention, max_results) since
             the last copy, so that it holds what SOURCE holds (rsync --delete). Without it the copy keeps
             every result it ever received, and its files of pruned results (no longer in its index) stay.
             Refused when DESTINATION holds files but no index.jsonl: that is not a copy of an output folder.

examples:
  $0 pi@deblurd.local:/var/lib/deblurd/output/ ./deblurd-output/
  $0 --mirror pi@deblurd.local:/var/lib/deblurd/output/ ./deblurd-output/
EOF
}
mirror=
case "${1-}" in
    -h|--help) usage; exit 0 ;;
    --mirror) mirror=--delete; shift ;;
esac
if [ $# -ne 2 ]; then
    usage >&2
    exit 64
fi
src=${1%/}/
dst=${2%/}/
repo=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "$mirror" ] && [ -d "$dst" ] && [ ! -f "${dst}index.jsonl" ] && [ -n "$(ls -A "$dst")" ]; then
    echo "$0: refusing --mirror into $dst: it holds files but no index.jsonl, so it is not a copy of a deblurd" \
         "output folder, and --mirror would delete them; give an empty or new folder, or an earlier copy" >&2
    exit 64
fi
copy() { rsync -a --exclude='.*' "$@" || [ $? -eq 24 ]; }
mkdir -p "$dst"
# 1. the results' files; with --mirror, the files of results pruned before this step are deleted here: a
#    result leaves the index before its files go, so the index of step 2 names none of them
copy ${mirror:+"$mirror"} --exclude=/index.jsonl "$src" "$dst"
copy "${src}index.jsonl" "${dst}.index.jsonl.part"  # 2. the index as it is now
copy --exclude=/index.jsonl "$src" "$dst"           # 3. the files of results indexed since step 1
mv "${dst}.index.jsonl.part" "${dst}index.jsonl"    # 4. the index
if ! PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" python3 -m deblurd.output.gallery "$dst" >/dev/null; then
    echo "$0: the results in $dst are complete, but its gallery could not be rewritten from its index (see" \
         "above; it needs python3 3.11 or newer), so it may lag the index by a few seconds" >&2
    exit 1
fi                                                  # 5. the gallery, from the copied index
