#!/bin/sh
# Mutation testing: applies plausible one-line bugs to the numerics, one at a time, rebuilds and runs
# the tests that should notice; reports which mutations the suite kills and which survive.
#
#   sh tools/mutate.sh [--list] [--full] [--no-baseline] [--file LIST] [ID ...]
#
#   ID ...         run only these mutations (default: every one in the list)
#   --list         print the mutations (id, file, tests) and check that each snippet still matches
#                  exactly once; builds and runs nothing
#   --full         run the whole optimized suite for each mutation instead of its named tests
#   --no-baseline  skip the check that the unmutated tree passes the tests the mutations name
#   --file LIST    the mutation list (default tools/mutations.txt)
#   MUT_DIR=DIR    scratch tree and build (default build-mut); MUT_TIMEOUT=S seconds per test run
#                  (default 900; a run past it counts as killed: the mutation hangs the suite)
#
# The source is never touched: the script keeps a copy of the tree in $MUT_DIR/tree (refreshed from
# the work tree at every start, file by file, so its build stays incremental), applies each mutation
# there, builds with VERILATOR= (the RTL is not a target here) and restores the file before the next
# one. A killed run leaves at most the scratch copy mutated, and the next start repairs it.
#
# The list (tools/mutations.txt): entries separated by blank lines, '#' lines are comments:
#   id:     a short name
#   file:   the file to mutate, relative to the repository root
#   from:   the exact original text; must occur exactly once in the file (\n stands for a newline,
#           to take in a neighbouring line when one line alone is not unique; so a snippet cannot
#           hold a C string's own backslash-n)
#   to:     the replacement text (\n likewise)
#   tests:  test names for build/bitrom-tests (its name filters; any name containing one runs)
#   env:    optional VAR=value words for the test run, space-separated (e.g. BITROM_FORCE_ISA=scalar)
#   expect: optional "survives": a mutation documented as equivalent or accepted (README, "Mutation
#           testing"); it is reported either way, but its survival does not fail the run
#   why:    one line: the bug it stands for
# Each entry's from/to must differ, and the mutated tree must compile: a snippet that no longer
# matches, matches twice, or a mutant that does not build stops the run (the list cannot rot silently).
#
# Prints KILLED / SURVIVED per mutation and "mutation score: K/N killed"; exits 1 when a mutation not
# marked "expect: survives" survives or one so marked is killed (its note is stale), 2 on a list,
# build or baseline error.
set -u
cd "$(dirname "$0")/.." || exit 2
LIST=tools/mutations.txt
MUT_DIR=${MUT_DIR:-build-mut}
MUT_TIMEOUT=${MUT_TIMEOUT:-900}
JOBS=${JOBS:-2}
mode=run
full=0
baseline=1
ids=""
while [ $# -gt 0 ]; do
    case "$1" in
    --list) mode=list ;;
    --full) full=1 ;;
    --no-baseline) baseline=0 ;;
    --file) shift; LIST=${1:?--file needs a path} ;;
    -h | --help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "mutate.sh: unknown option $1" >&2; exit 2 ;;
    *) ids="$ids $1" ;;
    esac
    shift
done
[ -f "$LIST" ] || { echo "mutate.sh: $LIST: no such file" >&2; exit 2; }

die() { echo "mutate.sh: $*" >&2; exit 2; }

# ---- the list, flattened to one record per line, fields separated by US (\037, not whitespace, so
# that an empty field stays a field): id file from to tests env expect why
RECORDS=$MUT_DIR/records.tsv
mkdir -p "$MUT_DIR/logs" || die "cannot create $MUT_DIR"
awk -v list="$LIST" '
    function flush() {
        if (n == 0) return
        for (k = 1; k <= 6; k++) if (!(need[k] in f)) { printf "%s:%d: entry %s lacks \"%s:\"\n", list, start, (f["id"] ? f["id"] : "?"), need[k] > "/dev/stderr"; bad = 1 }
        if (f["from"] == f["to"]) { printf "%s:%d: entry %s: from and to are the same\n", list, start, f["id"] > "/dev/stderr"; bad = 1 }
        if (f["id"] in seen) { printf "%s:%d: id %s used twice\n", list, start, f["id"] > "/dev/stderr"; bad = 1 }
        if (f["expect"] != "" && f["expect"] != "survives") { printf "%s:%d: entry %s: expect: is \"survives\" or absent\n", list, start, f["id"] > "/dev/stderr"; bad = 1 }
        seen[f["id"]] = 1
        printf "%s\037%s\037%s\037%s\037%s\037%s\037%s\037%s\n", f["id"], f["file"], f["from"], f["to"], f["tests"], f["env"], f["expect"], f["why"]
        n = 0; split("", f)
    }
    BEGIN { split("id file from to tests why", need, " ") }
    /^#/ { next }
    /^[ \t]*$/ { flush(); next }
    {
        if (n == 0) start = NR
        n++
        p = index($0, ":")
        key = substr($0, 1, p - 1)
        if (p == 0 || key !~ /^(id|file|from|to|tests|env|expect|why)$/) { printf "%s:%d: not a \"key: value\" line: %s\n", list, NR, $0 > "/dev/stderr"; bad = 1; next }
        val = substr($0, p + 1); sub(/^ /, "", val)
        if (index(val, "\037")) { printf "%s:%d: a \\037 byte in the value\n", list, NR > "/dev/stderr"; bad = 1 }
        if (key in f) { printf "%s:%d: %s: given twice in one entry\n", list, NR, key > "/dev/stderr"; bad = 1 }
        f[key] = val
    }
    END { flush(); exit bad }
' "$LIST" > "$RECORDS" || die "$LIST: malformed (see above)"
[ -s "$RECORDS" ] || die "$LIST: no mutations"

# apply FILE FROM TO OUT: writes FILE with the one occurrence of FROM replaced by TO to OUT; fails
# (naming the count) unless FROM occurs exactly once. Literal text, no patterns; \n is a newline
# (passed through the environment: awk -v would interpret every backslash).
apply() {
    MUT_FROM=$2 MUT_TO=$3 awk -v name="$1" '
        function unesc(s) { gsub(/\\n/, "\n", s); return s }
        { text = text $0 "\n" }
        END {
            from = unesc(ENVIRON["MUT_FROM"]); to = unesc(ENVIRON["MUT_TO"])
            count = 0; rest = text
            while ((p = index(rest, from)) > 0) { count++; rest = substr(rest, p + length(from)) }
            if (count != 1) { printf "%s: the snippet occurs %d times (want exactly 1)\n", name, count > "/dev/stderr"; exit 1 }
            p = index(text, from)
            printf "%s", substr(text, 1, p - 1) to substr(text, p + length(from))
        }' "$1" > "$4"
}

selected() { # is id $1 among the ids asked for (all when none)?
    [ -z "$ids" ] && return 0
    case " $ids " in *" $1 "*) return 0 ;; esac
    return 1
}

tab=$(printf '\037')
for id in $ids; do
    cut -d "$tab" -f1 "$RECORDS" | grep -qx -- "$id" || die "no mutation named $id in $LIST"
done

# ---- check every entry (also in --list mode)
errors=0
while IFS="$tab" read -r id file from to tests env expect why; do
    selected "$id" || continue
    if [ ! -f "$file" ]; then echo "mutate.sh: $id: $file: no such file" >&2; errors=$((errors + 1)); continue; fi
    apply "$file" "$from" "$to" /dev/null || { echo "mutate.sh: $id: in $LIST" >&2; errors=$((errors + 1)); }
    if [ $mode = list ]; then
        printf '%-28s %-28s %s%s\n' "$id" "$file" "$tests" "${expect:+  (expected to survive)}"
    fi
done < "$RECORDS"
[ $errors = 0 ] || die "$errors entries of $LIST do not apply"
[ $mode = list ] && { echo "$(wc -l < "$RECORDS") mutations, every snippet matches exactly once"; exit 0; }

# ---- one run at a time per scratch tree (a second would build and mutate under the first)
if ! mkdir "$MUT_DIR/lock" 2>/dev/null; then
    die "$MUT_DIR/lock exists: another mutate.sh is running here (remove the directory if it was killed), or set MUT_DIR"
fi
trap 'rmdir "$MUT_DIR/lock" 2>/dev/null' EXIT
trap 'exit 130' INT TERM HUP

# ---- the scratch tree: the files the build and the tests read, copied only where they differ
TREE=$MUT_DIR/tree
mkdir -p "$TREE"
sync_tree() {
    find "$TREE/src" "$TREE/tests" -type f 2>/dev/null | while read -r f; do # a file gone from the work tree
        [ -f "${f#"$TREE"/}" ] || rm -f "$f"
    done
    find Makefile src tests data rtl -type f | while read -r f; do
        if ! cmp -s "$f" "$TREE/$f"; then
            mkdir -p "$TREE/$(dirname "$f")"
            cp "$f" "$TREE/$f" # a fresh mtime: make rebuilds what depends on it
        fi
    done
}
build() { # the two binaries in the scratch tree; output to $1
    nice make -C "$TREE" -s -j"$JOBS" VERILATOR= BUILD=build build/bitrom build/bitrom-tests < /dev/null > "$1" 2>&1
}
# run_tests LOG ENV TESTS...: the tests from the repository root (the assets and models are found as
# in a normal run), with the scratch binaries; the first failure ends the run
run_tests() {
    log=$1 envs=$2
    shift 2
    if [ "$full" = 1 ]; then set --; fi
    # shellcheck disable=SC2086 # envs is a list of VAR=value words
    env $envs BITROM="$TREE/build/bitrom" BITROM_TESTS_FAIL_FAST=1 nice timeout "$MUT_TIMEOUT" "$TREE/build/bitrom-tests" "$@" > "$log" 2>&1
}

start=$(date +%s)
sync_tree
echo "== building the unmutated scratch tree ($TREE)"
build "$MUT_DIR/logs/build-base.log" || { tail -n 20 "$MUT_DIR/logs/build-base.log"; die "the unmutated tree does not build"; }

if [ $baseline = 1 ]; then
    # each distinct environment once, with the tests of the mutations run in it
    while IFS="$tab" read -r id file from to tests env expect why; do selected "$id" && echo "${env:--}"; done < "$RECORDS" | sort -u > "$MUT_DIR/envs.txt"
    while read -r envs; do
        env_tests=$(while IFS="$tab" read -r id file from to tests env expect why; do
            selected "$id" && [ "${env:--}" = "$envs" ] && echo "$tests"; done < "$RECORDS" | tr ' ' '\n' | sort -u | tr '\n' ' ')
        [ "$envs" = - ] && envs=""
        echo "== baseline: the unmutated tree passes the named tests${envs:+ with $envs}"
        # shellcheck disable=SC2086
        run_tests "$MUT_DIR/logs/baseline.log" "$envs" $env_tests < /dev/null || { tail -n 30 "$MUT_DIR/logs/baseline.log"; die "baseline fails: fix the tree or the list before mutating"; }
    done < "$MUT_DIR/envs.txt"
fi

killed=0
total=0
unexpected=0
survivors=""
while IFS="$tab" read -r id file from to tests env expect why; do
    selected "$id" || continue
    total=$((total + 1))
    t0=$(date +%s)
    apply "$file" "$from" "$to" "$TREE/$file.mut" || die "$id: does not apply"
    mv "$TREE/$file.mut" "$TREE/$file"
    if ! build "$MUT_DIR/logs/$id.build.log"; then
        cp "$file" "$TREE/$file"
        tail -n 20 "$MUT_DIR/logs/$id.build.log"
        die "$id: the mutant does not compile (fix its entry: a mutation must be a plausible bug, not a syntax error)"
    fi
    # shellcheck disable=SC2086
    run_tests "$MUT_DIR/logs/$id.log" "$env" $tests < /dev/null
    rc=$?
    cp "$file" "$TREE/$file" # restore (fresh mtime, so the next build recompiles it)
    secs=$(($(date +%s) - t0))
    if [ $rc = 0 ]; then
        survivors="$survivors $id"
        if [ "$expect" = survives ]; then verdict="SURVIVED (expected: equivalent or accepted, see README)"; else verdict=SURVIVED; unexpected=$((unexpected + 1)); fi
    else
        killed=$((killed + 1))
        how=$(grep -m1 -E '^\[ FAIL \]' "$MUT_DIR/logs/$id.log" | sed 's/^\[ FAIL \] //')
        [ $rc = 124 ] && how="timeout after ${MUT_TIMEOUT}s"
        [ -z "$how" ] && how="exit $rc"
        verdict="KILLED by $how"
        if [ "$expect" = survives ]; then # the list says it cannot be killed: its note is stale
            verdict="$verdict, but marked expect: survives (update the list and the README)"
            unexpected=$((unexpected + 1))
        fi
    fi
    printf '%-28s %s (%ss)\n' "$id" "$verdict" "$secs"
    [ $rc = 0 ] && [ "$expect" != survives ] && printf '%-28s   the bug: %s; log %s\n' "" "$why" "$MUT_DIR/logs/$id.log"
done < "$RECORDS"

echo "== restoring the scratch tree"
sync_tree
build "$MUT_DIR/logs/build-base.log" || echo "mutate.sh: warning: the restored scratch tree does not build" >&2
echo "survivors:${survivors:- none}"
echo "mutation score: $killed/$total killed ($(($(date +%s) - start)) s)"
[ $unexpected = 0 ] || exit 1
exit 0
