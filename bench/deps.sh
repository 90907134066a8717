#!/usr/bin/env bash
# bench/deps.sh — time `scratchpack deps` against libtree and ldd on this machine's ELF files.
#
# The corpus is every regular (not symlink) ELF file under /usr/bin, /usr/sbin and /usr/lib/x86_64-linux-gnu
# whose PT_INTERP is /lib64/ld-linux-x86-64.so.2 or that has DT_NEEDED entries (see bench/elfcorpus). Every
# tool is timed on that same list, wall clock, RUNS times (LDD_RUNS for ldd), after one untimed warm-up, and
# the best and median are printed. The OS page cache is warm for every tool: nothing here is a cold-cache
# number. A spot check then compares scratchpack's answer with ldd's for SPOT random files.
#
# Usage: ./bench/deps.sh            (or: make bench)
# Environment: RUNS (default 5), LDD_RUNS (default 3), SPOT (default 20), SPOT_SEED (fixes the spot-check
# sample), SKIP_BUILD=1 (use bin/scratchpack as it is), DIRS (default "/usr/bin /usr/sbin
# /usr/lib/x86_64-linux-gnu").
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

RUNS=${RUNS:-5}
LDD_RUNS=${LDD_RUNS:-3}
SPOT=${SPOT:-20}
DIRS=${DIRS:-/usr/bin /usr/sbin /usr/lib/x86_64-linux-gnu}
BIN=bin/scratchpack
export LC_ALL=C NO_COLOR=1 # NO_COLOR: libtree prints no escape codes

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

say() { printf '%s\n' "$*" >&2; }

# --- build -----------------------------------------------------------------------------------------------
if [[ ${SKIP_BUILD:-0} != 1 || ! -x $BIN ]]; then
	say "== building $BIN"
	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$BIN" ./cmd/scratchpack
fi

# --- corpus ----------------------------------------------------------------------------------------------
say "== building the corpus from: $DIRS"
t0=$EPOCHREALTIME
# shellcheck disable=SC2086 # DIRS is a word list on purpose
go run ./bench/elfcorpus $DIRS >"$tmp/corpus"
t1=$EPOCHREALTIME
mapfile -t files <"$tmp/corpus"
nfiles=${#files[@]}
if ((nfiles == 0)); then
	say "no ELF file found under $DIRS"
	exit 1
fi
printf '%s\0' "${files[@]}" >"$tmp/corpus0"
say "   $nfiles files in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')s"

# One process for all files if the argument list fits (each argument costs its bytes, a NUL and a pointer;
# the environment shares the same space); otherwise xargs splits the list into several processes.
argbytes=$(awk '{n += length($0) + 1 + 8} END {print n + 0}' "$tmp/corpus")
envbytes=$(env | awk '{n += length($0) + 1 + 8} END {print n + 0}')
argmax=$(getconf ARG_MAX)
if ((argbytes + envbytes + 65536 < argmax)); then
	split_args=0
	argnote="one process, all $nfiles files as arguments ($argbytes of $argmax bytes of ARG_MAX)"
else
	split_args=1
	argnote="argument list too long ($argbytes bytes, ARG_MAX $argmax): xargs splits it into several processes"
fi

# all_files CMD...: run CMD with every corpus file as arguments, split by xargs only when it must be.
all_files() {
	if ((split_args)); then
		xargs -0 -s $((argmax / 2)) "$@" <"$tmp/corpus0"
	else
		"$@" "${files[@]}"
	fi
}
# per_file CMD...: run CMD once per corpus file, one at a time.
per_file() { xargs -0 -n1 -P1 "$@" <"$tmp/corpus0"; }

have_libtree=0
command -v libtree >/dev/null 2>&1 && have_libtree=1
have_ldd=0
command -v ldd >/dev/null 2>&1 && have_ldd=1

# --- timing ----------------------------------------------------------------------------------------------
# bench ID RUNS CMD...: time CMD (output discarded, exit status kept but never fatal) RUNS times after one
# untimed warm-up; records best, median and the last exit status under ID.
declare -A best median status
bench() {
	local id=$1 runs=$2 rc t0 t1 i
	shift 2
	say "== $id (warm-up + $runs runs)"
	rc=0
	"$@" >/dev/null 2>&1 || rc=$?
	: >"$tmp/times.$id"
	for ((i = 0; i < runs; i++)); do
		rc=0
		t0=$EPOCHREALTIME
		"$@" >/dev/null 2>&1 || rc=$?
		t1=$EPOCHREALTIME
		awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.4f\n", b-a}' >>"$tmp/times.$id"
	done
	best[$id]=$(sort -n "$tmp/times.$id" | head -n1)
	median[$id]=$(sort -n "$tmp/times.$id" | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else printf "%.4f\n", (v[NR/2]+v[NR/2+1])/2}')
	status[$id]=$rc
	say "   best ${best[$id]}s median ${median[$id]}s (exit status $rc; all: $(paste -sd' ' "$tmp/times.$id"))"
}

sp_all() { all_files "$BIN" deps --format list; }
sp_all_1cpu() { GOMAXPROCS=1 all_files "$BIN" deps --format list; }
lt_all_vvv() { all_files libtree -p -vvv; }
lt_all_vv() { all_files libtree -p -vv; }
lt_each_vv() { per_file libtree -p -vv; }
ldd_each() { per_file ldd; }

ids=(sp sp1)
bench sp "$RUNS" sp_all
bench sp1 "$RUNS" sp_all_1cpu
if ((have_libtree)); then
	ids+=(lt3 lt2 lt2each)
	bench lt3 "$RUNS" lt_all_vvv
	bench lt2 "$RUNS" lt_all_vv
	bench lt2each "$RUNS" lt_each_vv
else
	say "!! libtree not installed: its rows are skipped (apt-get install libtree)"
fi
if ((have_ldd)); then
	ids+=(ldd)
	bench ldd "$LDD_RUNS" ldd_each
else
	say "!! ldd not found: its row is skipped"
fi

# --- spot check ------------------------------------------------------------------------------------------
# The set of files scratchpack lists for one input against the set ldd prints (both through realpath; a name
# either cannot find is kept as "missing:NAME"). Informative only: elfdeps' system test is the real check.
sp_set() {
	local f=$1 out err
	out=$("$BIN" deps --format list "$f" 2>"$tmp/sp.err") || true
	err=$(sed -n 's/^scratchpack deps: \([^ ]*\) not found.*/missing:\1/p' "$tmp/sp.err")
	{
		if [[ -n $out ]]; then printf '%s\n' "$out" | xargs -d '\n' realpath -m --; fi
		if [[ -n $err ]]; then printf '%s\n' "$err"; fi
	} | sort -u
}
ldd_set() {
	local f=$1
	{ ldd "$f" 2>/dev/null || true; } | awk '
		/=> not found/ { print "missing:" $1; next }
		/=>/ { if ($3 ~ /^\//) print $3; next }
		$1 ~ /^\// { print $1 }
	' | while IFS= read -r p; do
		case $p in
		missing:*) printf '%s\n' "$p" ;;
		*) realpath -m -- "$p" ;;
		esac
	done | sort -u
}

spot_agree=0 spot_n=0
spot_report=""
if ((have_ldd && SPOT > 0)); then
	say "== spot check: $SPOT random files, scratchpack vs ldd"
	if [[ -n ${SPOT_SEED:-} ]]; then
		shuf -n "$SPOT" --random-source=<(yes "$SPOT_SEED") "$tmp/corpus" >"$tmp/spot"
	else
		shuf -n "$SPOT" "$tmp/corpus" >"$tmp/spot"
	fi
	while IFS= read -r f; do
		spot_n=$((spot_n + 1))
		sp_set "$f" >"$tmp/a"
		ldd_set "$f" >"$tmp/b"
		if cmp -s "$tmp/a" "$tmp/b"; then
			spot_agree=$((spot_agree + 1))
		else
			spot_report+="  $f"$'\n'
			spot_report+="$(comm -23 "$tmp/a" "$tmp/b" | sed 's/^/    only scratchpack: /')"$'\n'
			spot_report+="$(comm -13 "$tmp/a" "$tmp/b" | sed 's/^/    only ldd:         /')"$'\n'
		fi
	done <"$tmp/spot"
fi

# --- report ----------------------------------------------------------------------------------------------
declare -A label mode
label[sp]="scratchpack deps --format list"
mode[sp]="1 process, GOMAXPROCS=$(nproc)"
label[sp1]="scratchpack deps --format list"
mode[sp1]="1 process, GOMAXPROCS=1"
label[lt3]="libtree -p -vvv"
mode[lt3]="1 process, whole tree"
label[lt2]="libtree -p -vv"
mode[lt2]="1 process, pruned"
label[lt2each]="libtree -p -vv"
mode[lt2each]="1 process per file"
label[ldd]="ldd"
mode[ldd]="1 process per file"
if ((split_args)); then
	for id in sp sp1 lt3 lt2; do mode[$id]="xargs batches"; done
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.1fx", a/b; else print "-" }'; }

echo
echo "machine:  $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1), $(uname -sr)"
echo "tools:    scratchpack ($(go version | awk '{print $3}')), libtree $( ((have_libtree)) && libtree --version || echo -), $(ldd --version 2>/dev/null | sed -n 1p || true)"
echo "corpus:   $nfiles files (regular ELF, PT_INTERP $(printf '%s' /lib64/ld-linux-x86-64.so.2) or DT_NEEDED) under $DIRS"
echo "args:     $argnote"
echo "load:     $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end (1/5/15 min; a busy machine skews every row)"
echo "timing:   wall clock, warm page cache, best and median of $RUNS runs ($LDD_RUNS for ldd) after a warm-up"
echo
fmt='%-32s %-26s %6s %9s %9s %9s %9s %5s\n'
# shellcheck disable=SC2059 # fmt is the format on purpose
printf "$fmt" tool mode files best_s median_s x_best x_median exit
# shellcheck disable=SC2059
printf "$fmt" "$(printf '%.0s-' {1..32})" "$(printf '%.0s-' {1..26})" ------ --------- --------- --------- --------- -----
for id in "${ids[@]}"; do
	# shellcheck disable=SC2059
	printf "$fmt" "${label[$id]}" "${mode[$id]}" "$nfiles" "${best[$id]}" "${median[$id]}" \
		"$(ratio "${best[$id]}" "${best[sp]}")" "$(ratio "${median[$id]}" "${median[sp]}")" "${status[$id]}"
done
echo "(x_best, x_median: the row's time over scratchpack's with GOMAXPROCS=$(nproc); exit: status of the last run)"
echo
if ((have_libtree)); then
	echo "libtree/scratchpack (median): -vvv one process $(ratio "${median[lt3]}" "${median[sp]}"), -vv one process $(ratio "${median[lt2]}" "${median[sp]}"), -vv per file $(ratio "${median[lt2each]}" "${median[sp]}")"
fi
if ((have_ldd)); then
	echo "ldd/scratchpack (median):     $(ratio "${median[ldd]}" "${median[sp]}")"
	echo
	echo "spot check: $spot_agree of $spot_n random corpus files have the same set of files (realpath) in scratchpack and ldd"
	if [[ -n $spot_report ]]; then
		printf '%s' "$spot_report" | sed '/^$/d'
	fi
fi
