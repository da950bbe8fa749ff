#!/bin/sh
# The boundary of libnabla.so: it exports exactly the functions that the public
# headers declare with NB_API, and nothing internal.
#   tests/exports.sh LIBNABLA.so INCLUDE_DIR      (INCLUDE_DIR: include/nabla)
# Fails when an exported symbol does not start with nb_, starts with nb__ or is
# not declared NB_API in INCLUDE_DIR/*.h, or when a function the headers
# declare (other than static inline ones) is missing from the exports.
set -eu
lib=$1
inc=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

nm -D --defined-only "$lib" | awk 'NF == 3 {print $3}' | sort -u >"$tmp/exported"
# nabla/mpi.h belongs to libnabla-mpi (meson feature mpi), not to libnabla.
headers=$(ls "$inc"/*.h | grep -v '/mpi\.h$')
[ -s "$tmp/exported" ] || { echo "no exported symbols read from $lib"; exit 1; }
# Declared: NB_API lines; all function declarations: any line at column 0 that
# names nb_xxx( and is not a static inline definition, a macro or a comment.
grep -h '^NB_API' $headers | grep -oE '\bnb_[a-z0-9_]+\(' | tr -d '(' | sort -u >"$tmp/api"
grep -hE '^(NB_API )?[a-z].*\bnb_[a-z0-9_]+\(' $headers | grep -v '^static' |
  grep -oE '\bnb_[a-z0-9_]+\(' | tr -d '(' | sort -u >"$tmp/declared"
[ -s "$tmp/declared" ] || { echo "no declarations found in $inc/*.h"; exit 1; }

status=0
bad=$(grep -v '^nb_' "$tmp/exported" || true)
[ -z "$bad" ] || { echo "exported, not nb_*:"; echo "$bad"; status=1; }
bad=$(grep '^nb__' "$tmp/exported" || true)
[ -z "$bad" ] || { echo "exported, internal nb__*:"; echo "$bad"; status=1; }
bad=$(comm -23 "$tmp/exported" "$tmp/api")
[ -z "$bad" ] || { echo "exported, not declared NB_API in $inc:"; echo "$bad"; status=1; }
bad=$(comm -13 "$tmp/exported" "$tmp/declared")
[ -z "$bad" ] || { echo "declared in $inc but not exported (NB_API missing?):"; echo "$bad"; status=1; }
echo "$(wc -l <"$tmp/exported") symbols exported, $(wc -l <"$tmp/declared") functions declared"
exit $status
