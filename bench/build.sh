#!/usr/bin/env bash
# bench/build.sh — time `scratchpack build` against tar+gzip and `crane append` on one large closure.
#
# The inputs are several big programs of this machine together (default: git, curl, python3, perl and the
# largest libLLVM-*.so.1 installed; whichever of them exist), so the closure is a few hundred MB. It is
# packed once, untimed, with `scratchpack build -o dir:` and `-o tar:`; every tool then works on exactly
# those files:
#   scratchpack build FILES -o oci:DIR:bench --force                      (gzip layer, the reference row)
#   scratchpack build FILES -o oci:DIR:bench --force --compression zstd
#   scratchpack build FILES -o tar:FILE --force                           (no compression)
#   tar -C ROOT -cf - . | gzip > OUT.tar.gz    (the baseline: same files, same symlinks, gzip's default
#                                               level 6, single-threaded as gzip is; the dir build is not
#                                               counted)
#   tar -C ROOT -cf OUT.tar .  and  tar -C ROOT -cf - . | zstd -3 -T1   (references for the other two rows)
#   crane append --oci-empty-base -f LAYER.tar -t bench:latest -o OUT.tar  (crane's step only; its layer
#                                               input is scratchpack's uncompressed tar of the same tree)
# Every command is timed wall clock RUNS times after one untimed warm-up (warm page cache: nothing here is
# a cold-cache number), and the best and median are printed with ratios to scratchpack's oci gzip row. The
# bytes of the closure, of the image layers and of tar.gz are compared, and the uncompressed layer is
# checked to be the same bytes as scratchpack's tar output.
#
# crane is installed once from the Go module proxy (go install ...@CRANE_VERSION) into
# bin/bench-tools/ and reused; without network and without it the crane row is skipped.
#
# Usage: ./bench/build.sh            (or: make bench, which also runs bench/deps.sh)
# Environment: RUNS (default 5), FILES (space-separated inputs, replacing the default set), SKIP_BUILD=1
# (use bin/scratchpack as it is), CRANE_VERSION (default v0.22.1), CRANE (a crane binary to use instead),
# KEEP=1 (keep the scratch directory and print where it is).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

RUNS=${RUNS:-5}
CRANE_VERSION=${CRANE_VERSION:-v0.22.1}
BIN=bin/scratchpack
TOOLS=bin/bench-tools
export LC_ALL=C
unset SOURCE_DATE_EPOCH # every scratchpack output then has the same (epoch) times, whatever the caller set

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/scratchpack-bench-build.XXXXXX")
if [[ ${KEEP:-0} == 1 ]]; then
	trap 'printf "scratch directory kept: %s\n" "$tmp" >&2' EXIT
else
	trap 'rm -rf "$tmp"' EXIT
fi

say() { printf '%s\n' "$*" >&2; }
mib() { awk -v n="$1" 'BEGIN{printf "%.1f", n/1048576}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2fx", a/b; else print "-" }'; }

# --- build -----------------------------------------------------------------------------------------------
if [[ ${SKIP_BUILD:-0} != 1 || ! -x $BIN ]]; then
	say "== building $BIN"
	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$BIN" ./cmd/scratchpack
fi

# --- inputs ----------------------------------------------------------------------------------------------
files=()
if [[ -n ${FILES:-} ]]; then
	read -r -a files <<<"$FILES"
else
	llvm=$(find /usr/lib/x86_64-linux-gnu -maxdepth 1 -type f -name 'libLLVM-*.so*' -printf '%s %p\n' 2>/dev/null |
		sort -rn | awk 'NR == 1 {print $2}')
	for f in /usr/bin/git /usr/bin/curl /usr/bin/python3 /usr/bin/perl $llvm; do
		if [[ -e $f ]]; then files+=("$f"); fi
	done
fi
if ((${#files[@]} == 0)); then
	say "no input found (set FILES to some ELF programs or libraries)"
	exit 1
fi

# --- crane -----------------------------------------------------------------------------------------------
crane=${CRANE:-$TOOLS/crane-$CRANE_VERSION}
if [[ ! -x $crane ]]; then
	say "== installing crane $CRANE_VERSION (go install, once, into $TOOLS/)"
	mkdir -p "$TOOLS"
	if GOBIN="$tmp/gobin" GOFLAGS= go install "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION" >&2; then
		mv "$tmp/gobin/crane" "$crane"
	else
		say "!! could not install crane: its row is skipped"
		crane=""
	fi
fi
have_zstd=0
command -v zstd >/dev/null 2>&1 && have_zstd=1

# --- the tree every tool packs ---------------------------------------------------------------------------
mkdir -p "$tmp/out"
say "== scratchpack build ${files[*]} -o dir: and -o tar: (untimed: the file set of the other tools)"
"$BIN" build "${files[@]}" -o "dir:$tmp/root" --force >/dev/null 2>"$tmp/notes"
"$BIN" build "${files[@]}" -o "tar:$tmp/layer.tar" --force >/dev/null 2>/dev/null
sed 's/^/   /' "$tmp/notes" >&2
read -r nreg closure_bytes < <(find "$tmp/root" -type f -printf '%s\n' | awk '{s += $1} END {print NR, s + 0}')
nlink=$(find "$tmp/root" -type l | wc -l)
ndir=$(find "$tmp/root" -mindepth 1 -type d | wc -l)
# The programs and their libraries alone (what `scratchpack deps` lists), without the few base files
# (/etc/passwd, CA certificates, ...) that build adds.
mapfile -t deps < <("$BIN" deps --format list "${files[@]}")
deps_bytes=$(du -cLb "${files[@]}" "${deps[@]}" | tail -n 1 | cut -f1)
tar_bytes=$(stat -c %s "$tmp/layer.tar")
inputs_desc=""
for f in "${files[@]}"; do
	inputs_desc+="$f ($(mib "$(stat -L -c %s "$f")") MiB), "
done
inputs_desc=${inputs_desc%, }

# --- timing ----------------------------------------------------------------------------------------------
# bench ID CMD...: time CMD (output discarded, exit status kept but never fatal) RUNS times after one
# untimed warm-up; records best, median and the last exit status under ID.
declare -A best median status
bench() {
	local id=$1 rc t0 t1 i
	shift
	say "== $id (warm-up + $RUNS runs)"
	rc=0
	"$@" >/dev/null 2>"$tmp/err.$id" || rc=$?
	: >"$tmp/times.$id"
	for ((i = 0; i < RUNS; i++)); do
		rc=0
		t0=$EPOCHREALTIME
		"$@" >/dev/null 2>"$tmp/err.$id" || rc=$?
		t1=$EPOCHREALTIME
		awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f\n", b-a}' >>"$tmp/times.$id"
	done
	best[$id]=$(sort -n "$tmp/times.$id" | head -n1)
	median[$id]=$(sort -n "$tmp/times.$id" | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else printf "%.3f\n", (v[NR/2]+v[NR/2+1])/2}')
	status[$id]=$rc
	say "   best ${best[$id]}s median ${median[$id]}s (exit status $rc; all: $(paste -sd' ' "$tmp/times.$id"))"
	if ((rc != 0)); then
		sed 's/^/   !! /' "$tmp/err.$id" | tail -n 5 >&2
	fi
}

sp_oci_gzip() { "$BIN" build "${files[@]}" -o "oci:$tmp/out/oci-gzip:bench" --force; }
sp_oci_zstd() { "$BIN" build "${files[@]}" -o "oci:$tmp/out/oci-zstd:bench" --force --compression zstd; }
sp_tar() { "$BIN" build "${files[@]}" -o "tar:$tmp/out/sp.tar" --force; }
tar_gzip() { tar -C "$tmp/root" -cf - . | gzip >"$tmp/out/t.tar.gz"; }
tar_zstd() { tar -C "$tmp/root" -cf - . | zstd -q -3 -T1 >"$tmp/out/t.tar.zst"; }
tar_pigz() { tar -C "$tmp/root" -cf - . | pigz -6 >"$tmp/out/t.tar.pigz"; }
tar_plain() { tar -C "$tmp/root" -cf "$tmp/out/t.tar" .; }
crane_append() { "$crane" append --oci-empty-base -f "$tmp/layer.tar" -t bench:latest -o "$tmp/out/crane.tar"; }

ids=(sp_gz sp_zst sp_tar tar_gz)
bench sp_gz sp_oci_gzip
bench sp_zst sp_oci_zstd
bench sp_tar sp_tar
bench tar_gz tar_gzip
if ((have_zstd)); then
	ids+=(tar_zst)
	bench tar_zst tar_zstd
else
	say "!! zstd not installed: the tar | zstd row is skipped"
fi
if command -v pigz >/dev/null 2>&1; then
	ids+=(tar_pigz)
	bench tar_pigz tar_pigz
else
	say "!! pigz not installed: the tar | pigz row is skipped (apt-get install pigz)"
fi
ids+=(tar)
bench tar tar_plain
if [[ -n $crane ]]; then
	ids+=(crane)
	bench crane crane_append
fi

# --- bytes -----------------------------------------------------------------------------------------------
# layer_blob DIR: the path of the (last) layer blob of the image an OCI layout's index.json names first.
layer_blob() {
	local dir=$1 m
	m=$(tr -d ' \n\t' <"$dir/index.json" | grep -o '"digest":"sha256:[0-9a-f]*"' | head -n1 | sed 's/.*sha256:\([0-9a-f]*\)"/\1/')
	[[ -n $m ]] || return 0
	m=$(tr -d ' \n\t' <"$dir/blobs/sha256/$m" | sed -n 's/.*"layers":\[\(.*\)\].*/\1/p' |
		grep -o '"digest":"sha256:[0-9a-f]*"' | tail -n1 | sed 's/.*sha256:\([0-9a-f]*\)"/\1/')
	[[ -n $m ]] || return 0
	printf '%s\n' "$dir/blobs/sha256/$m"
}
fsize() { if [[ -f $1 ]]; then stat -c %s "$1"; else echo 0; fi; }
gz_layer=$(layer_blob "$tmp/out/oci-gzip")
zst_layer=$(layer_blob "$tmp/out/oci-zstd")
gz_bytes=$(fsize "$gz_layer")
zst_bytes=$(fsize "$zst_layer")
targz_bytes=$(fsize "$tmp/out/t.tar.gz")
gnutar_bytes=$(fsize "$tmp/out/t.tar")
tarzst_bytes=$(fsize "$tmp/out/t.tar.zst")
crane_bytes=0 crane_same=""
if [[ -n $crane && -f $tmp/out/crane.tar ]]; then
	read -r crane_bytes crane_layer < <(tar -tvf "$tmp/out/crane.tar" | awk '$6 ~ /\.tar\.gz$/ {print $3, $6}' | sort -n | tail -n1)
	if [[ ${crane_layer%.tar.gz} == "$(basename "$gz_layer")" ]]; then
		crane_same="byte-identical to scratchpack's gzip layer (same digest: same tar, same Go gzip level 1)"
	else
		crane_same="not the same bytes as scratchpack's gzip layer"
	fi
fi
# The layers hold exactly scratchpack's tar output.
tar_sum=$(sha256sum <"$tmp/layer.tar" | cut -d' ' -f1)
check() { if [[ $1 == "$tar_sum" ]]; then echo yes; else echo "NO ($1)"; fi; }
gz_same="- (no layer found)" zst_same="- (no layer found)"
if [[ -f $gz_layer ]]; then gz_same=$(check "$(gzip -dc <"$gz_layer" | sha256sum | cut -d' ' -f1)"); fi
if ((!have_zstd)); then
	zst_same="- (zstd not installed)"
elif [[ -f $zst_layer ]]; then
	zst_same=$(check "$(zstd -dcq <"$zst_layer" | sha256sum | cut -d' ' -f1)")
fi

# --- report ----------------------------------------------------------------------------------------------
declare -A label mode
label[sp_gz]="scratchpack build"
mode[sp_gz]="-o oci: (gzip layer)"
label[sp_zst]="scratchpack build"
mode[sp_zst]="-o oci: --compression zstd"
label[sp_tar]="scratchpack build"
mode[sp_tar]="-o tar: (uncompressed)"
label[tar_gz]="tar | gzip"
mode[tar_gz]="gzip -6 (default), 1 thread"
label[tar_pigz]="tar | pigz"
mode[tar_pigz]="pigz -6, all CPUs"
label[tar_zst]="tar | zstd"
mode[tar_zst]="zstd -3 (default), -T1"
label[tar]="tar"
mode[tar]="-cf FILE (uncompressed)"
label[crane]="crane append $CRANE_VERSION"
mode[crane]="--oci-empty-base -o TARBALL"

echo
echo "machine:  $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1), $(uname -sr)"
echo "tools:    scratchpack ($(go version | awk '{print $3}')), $(tar --version | head -n1), $(gzip --version | head -n1)$( ((have_zstd)) && printf ', zstd %s' "$(zstd --version | grep -o 'v[0-9.]*' | head -n1)")$([[ -n $crane ]] && printf ', crane %s' "$("$crane" version 2>/dev/null)")"
echo "inputs:   $inputs_desc"
echo "closure:  $nreg files, $nlink symlinks, $ndir directories; $closure_bytes bytes ($(mib "$closure_bytes") MiB) of file content ($deps_bytes bytes are the inputs and their ${#deps[@]} libraries, the rest base files build adds)"
echo "load:     $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end (1/5/15 min; a busy machine skews every row)"
echo "timing:   wall clock, warm page cache, best and median of $RUNS runs after a warm-up; outputs on $(df -PT "$tmp" | awk 'NR == 2 {print $1 " (" $2 ")"}')"
echo
fmt='%-26s %-28s %9s %9s %8s %8s %5s\n'
# shellcheck disable=SC2059 # fmt is the format on purpose
printf "$fmt" tool mode best_s median_s x_best x_median exit
# shellcheck disable=SC2059
printf "$fmt" "$(printf '%.0s-' {1..26})" "$(printf '%.0s-' {1..28})" --------- --------- -------- -------- -----
for id in "${ids[@]}"; do
	# shellcheck disable=SC2059
	printf "$fmt" "${label[$id]}" "${mode[$id]}" "${best[$id]}" "${median[$id]}" \
		"$(ratio "${best[$id]}" "${best[sp_gz]}")" "$(ratio "${median[$id]}" "${median[sp_gz]}")" "${status[$id]}"
done
echo "(x_best, x_median: the row's time over scratchpack's oci gzip row; exit: status of the last run)"
echo
sfmt='%-44s %12s %9s %9s\n'
# shellcheck disable=SC2059
printf "$sfmt" bytes bytes MiB x_closure
# shellcheck disable=SC2059
printf "$sfmt" "$(printf '%.0s-' {1..44})" ------------ --------- ---------
row() {
	# shellcheck disable=SC2059
	printf "$sfmt" "$1" "$2" "$(mib "$2")" "$(ratio "$2" "$closure_bytes")"
}
row "closure (sum of file sizes)" "$closure_bytes"
row "scratchpack tar (uncompressed layer)" "$tar_bytes"
row "tar (GNU, uncompressed)" "$gnutar_bytes"
row "scratchpack oci gzip layer" "$gz_bytes"
row "tar | gzip -6" "$targz_bytes"
if [[ -f $tmp/out/t.tar.pigz ]]; then row "tar | pigz -6" "$(fsize "$tmp/out/t.tar.pigz")"; fi
row "scratchpack oci zstd layer" "$zst_bytes"
if ((have_zstd)); then row "tar | zstd -3" "$tarzst_bytes"; fi
if [[ -n $crane ]]; then row "crane append layer" "$crane_bytes"; fi
echo
echo "layers are scratchpack's tar, byte for byte: gzip $gz_same, zstd $zst_same"
if [[ -n $crane ]]; then echo "crane's layer: $crane_same"; fi
echo
t_ratio=$(awk -v a="${median[sp_gz]}" -v b="${median[tar_gz]}" 'BEGIN{printf "%.2f", a/b}')
t_ok=$(awk -v r="$t_ratio" 'BEGIN{print (r <= 0.6) ? "met" : "NOT met"}')
echo "time:  scratchpack oci gzip / tar+gzip (median) = ${t_ratio}x (target <= 0.6x: $t_ok; best: $(ratio "${best[sp_gz]}" "${best[tar_gz]}"))"
if [[ -n ${median[tar_pigz]:-} ]]; then
	echo "       scratchpack oci gzip / tar+pigz (median) = $(ratio "${median[sp_gz]}" "${median[tar_pigz]}")"
fi
diff=$((gz_bytes - targz_bytes))
pct=$(awk -v d="$diff" -v b="$targz_bytes" 'BEGIN{printf "%.2f", 100*d/b}')
s_ok=$(awk -v p="$pct" 'BEGIN{print (p <= 3) ? "met" : "NOT met"}')
echo "bytes: scratchpack gzip layer - tar.gz = $diff bytes ($(mib "$diff") MiB, ${pct}%) (target at most 3% larger: $s_ok)"
if ((have_zstd)); then
	zdiff=$((zst_bytes - targz_bytes))
	echo "       scratchpack zstd layer - tar.gz = $zdiff bytes ($(mib "$zdiff") MiB)"
fi

# --- peak memory -----------------------------------------------------------------------------------------
# GNU time's %M is the peak RSS of the process it runs (fork, then exec: nothing of this shell is counted).
entries=$(tar -tf "$tmp/layer.tar" | wc -l)
if [[ -x /usr/bin/time ]]; then
	for mode in gzip zstd; do
		/usr/bin/time -f %M -o "$tmp/rss.$mode" "$BIN" build "${files[@]}" -o "oci:$tmp/out/rss-$mode:bench" --force --compression "$mode" >/dev/null 2>&1 || true
		rss=$(tail -n 1 "$tmp/rss.$mode")
		limit=$((64 * 1024 + entries))
		echo "peak RSS: scratchpack oci $mode = $rss KiB for $(mib "$closure_bytes") MiB in $entries entries (target <= 64 MiB + 1 KiB per entry = $limit KiB: $( ((rss <= limit)) && echo met || echo NOT met))"
	done
else
	echo "peak RSS: not measured (/usr/bin/time is missing: apt-get install time)"
fi
