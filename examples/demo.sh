#!/bin/sh
# demo.sh BIN: runprov's main job end to end on the csv-summary example —
# build and import an image, approve it, add a Runfile, run it on the example
# data, check the output's sha256 in the record, show the history. `make
# demo` calls it after building BIN. RUNPROV_DEMO_DIR is where the demo's
# store, image and outputs go (default: demo/ in the repository; it is
# removed first).
set -eu
bin=$(realpath "${1:-bin/runprov}")
cd "$(dirname "$0")/.."
work=${RUNPROV_DEMO_DIR:-$(pwd)/demo}
rm -rf "$work"
mkdir -p "$work"
export RUNPROV_STORE="$work/store"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "build the example image (csv-summary + busybox) into an OCI layout"
digest=$(go run ./examples/build-image -o "$work/image")
echo "image digest: $digest"

runfile=examples/csv-summary/Runfile
pinned=$(sed -n 's/^FROM .*@\(sha256:[0-9a-f]*\).*/\1/p' "$runfile")
if [ "$pinned" != "$digest" ]; then
	echo "the image built here differs from the one examples/csv-summary/Runfile pins ($pinned);"
	echo "using a copy of the Runfile that pins $digest"
	sed "s/$pinned/$digest/" "$runfile" >"$work/Runfile"
	runfile=$work/Runfile
fi

step "create a store, import the image and approve it"
show "$bin" init --tre
show "$bin" image import "$work/image"
show "$bin" image approve "$digest" --note "demo: built from examples/"
show "$bin" image ls

step "commit the Runfile"
commit=$("$bin" add -m "csv summary of the cohort" "$runfile")
echo "$commit"
show "$bin" log
show "$bin" cat "$commit"

step "run it: non-root, no network, read-only input, kept outputs"
show "$bin" run "$commit" --input data=examples/csv-summary/data --outputs "$work/outputs"
echo "--- $work/outputs/summary.txt"
cat "$work/outputs/summary.txt"

step "the history"
show "$bin" runs
run=$("$bin" runs --json --limit 1 | sed -n 's/.*"id": *"\([0-9a-f]*\)".*/\1/p' | head -n 1)
show "$bin" show "$run"

step "check: the record's sha256 of the output is the file's"
# The outputs manifest of runprov show --json (indented two spaces a level):
# the sha256 of the entry whose path is summary.txt.
recorded=$("$bin" show --json "$run" | awk '
	/^  "outputs": \[$/ { out = 1; next }
	out && /^  \]/ { exit }
	out && /^    }/ { hit = 0 }
	out && /"path": "summary.txt"/ { hit = 1 }
	out && hit && /"sha256": / { sub(/.*"sha256": *"/, ""); sub(/".*/, ""); print; exit }')
actual=$(sha256sum "$work/outputs/summary.txt" | cut -d' ' -f1)
if [ -z "$recorded" ] || [ "$recorded" != "$actual" ]; then
	printf 'DEMO FAILED: run %s records sha256 %s for summary.txt, sha256sum says %s\n' \
		"$run" "${recorded:-(none)}" "$actual" >&2
	exit 1
fi
echo "output sha256 ok: summary.txt $actual (record of run $run)"
show "$bin" query "SELECT id, status, exit_code, commit_hash, image_digest FROM runs"

step "provenance: an in-toto statement with a SLSA provenance predicate"
show "$bin" export "$run" --format intoto -o "$work/run.intoto.json"
sed -n '1,12p' "$work/run.intoto.json"
echo "... (the whole statement is in $work/run.intoto.json)"
show "$bin" fsck
printf '\nThe demo store is %s; try: RUNPROV_STORE=%s %s runs\n' "$RUNPROV_STORE" "$RUNPROV_STORE" "$bin"
