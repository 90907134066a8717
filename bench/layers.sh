#!/usr/bin/env bash
# bench/layers.sh — how much six images built from one root take in a registry, single-layered and layered
# by package, against one image holding all six programs.
#
# For each of PROGRAMS (default: curl git python3 jq sqlite3 ssh-keygen, those installed):
#   scratchpack build --layering single|package /usr/bin/PROG -o docker://127.0.0.1:PORT/bench-MODE:PROG
# into a fresh Debian docker-registry per mode (filesystem storage in a scratch directory). After each push
# it reads how many bytes the registry's blob store grew by: what that push uploaded (go-containerregistry
# asks the registry for every blob first and sends only those it lacks). The reference is one image of all
# the programs with one layer, built to an OCI layout: the bytes of its blobs. With LAYER_CACHE=1 the package
# pushes run twice with --layer-cache, and the script prints the time of the second (every layer cached) and
# the first.
#
# Usage: ./bench/layers.sh
# Environment: PROGRAMS, SKIP_BUILD=1 (use bin/scratchpack as it is), KEEP=1 (keep the scratch directory).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=bin/scratchpack
export LC_ALL=C
unset SOURCE_DATE_EPOCH
tmp=$(mktemp -d "${TMPDIR:-/tmp}/scratchpack-bench-layers.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	if [[ ${KEEP:-0} == 1 ]]; then printf 'scratch directory kept: %s\n' "$tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
say() { printf '%s\n' "$*" >&2; }
mib() { awk -v n="$1" 'BEGIN{printf "%.1f", n/1048576}'; }

command -v docker-registry >/dev/null || { say "docker-registry is not installed (apt-get install docker-registry)"; exit 1; }
if [[ ${SKIP_BUILD:-0} != 1 || ! -x $BIN ]]; then
	say "== building $BIN"
	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$BIN" ./cmd/scratchpack
fi
progs=()
for p in ${PROGRAMS:-curl git python3 jq sqlite3 ssh-keygen}; do
	if [[ -x /usr/bin/$p ]]; then progs+=("$p"); else say "!! /usr/bin/$p is not installed: skipped"; fi
done

# registry MODE: start a registry with its own storage; prints its address.
registry() {
	local mode=$1 port
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	mkdir -p "$tmp/reg-$mode"
	cat >"$tmp/reg-$mode.yml" <<EOF
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $tmp/reg-$mode/storage}}
http: {addr: "127.0.0.1:$port"}
EOF
	docker-registry serve "$tmp/reg-$mode.yml" >"$tmp/reg-$mode.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 50); do
		curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
		sleep 0.2
	done
	echo "127.0.0.1:$port"
}
stored() { # bytes of the registry's blobs
	find "$tmp/reg-$1/storage" -path '*/blobs/*' -name data -type f -printf '%s\n' 2>/dev/null | awk '{s += $1} END {print s + 0}'
}

say "== one image of all ${#progs[@]} programs, one layer"
all_args=()
for p in "${progs[@]}"; do all_args+=("/usr/bin/$p"); done
"$BIN" build --force "${all_args[@]}" -o "oci:$tmp/all:all" >/dev/null 2>"$tmp/all.err"
all_bytes=$(find "$tmp/all/blobs" -type f -printf '%s\n' | awk '{s += $1} END {print s}')

declare -A total uploads layers
for mode in single package; do
	addr=$(registry "$mode")
	say "== --layering $mode: pushing to $addr"
	before=0
	for p in "${progs[@]}"; do
		"$BIN" build --layering "$mode" "/usr/bin/$p" -o "docker://$addr/bench:$p" >/dev/null 2>"$tmp/$mode-$p.err"
		now=$(stored "$mode")
		uploads[$mode]+="$p $((now - before)); "
		before=$now
		n=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$addr/v2/bench/manifests/$p" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["layers"]))')
		layers[$mode]+="$p $n; "
	done
	total[$mode]=$before
done

echo
echo "machine:  $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
echo "programs: ${progs[*]} (from this machine's root, one build each)"
echo
printf '%-34s %12s %9s %9s\n' what bytes MiB x_all
printf '%-34s %12s %9s %9s\n' ---------------------------------- ------------ --------- ---------
printf '%-34s %12s %9s %9s\n' "one image of all, one layer" "$all_bytes" "$(mib "$all_bytes")" 1.00x
for mode in single package; do
	printf '%-34s %12s %9s %9s\n' "six images, --layering $mode" "${total[$mode]}" "$(mib "${total[$mode]}")" \
		"$(awk -v a="${total[$mode]}" -v b="$all_bytes" 'BEGIN{printf "%.2fx", a/b}')"
done
echo
for mode in single package; do
	echo "uploaded by each push, --layering $mode (bytes): ${uploads[$mode]}"
	echo "layers per image, --layering $mode: ${layers[$mode]}"
done
r=$(awk -v a="${total[package]}" -v b="$all_bytes" 'BEGIN{printf "%.2f", a/b}')
echo
echo "package layering: six images take ${r}x one image of all (target <= 1.15x: $(awk -v r="$r" 'BEGIN{print (r <= 1.15) ? "met" : "NOT met"}'))"

if [[ ${LAYER_CACHE:-1} == 1 ]]; then
	say "== the layer cache: every package image built twice with --layer-cache"
	cache="$tmp/cache"
	declare -A ct
	for round in first second; do
		t0=$EPOCHREALTIME
		for p in "${progs[@]}"; do
			"$BIN" build --force --layering package --layer-cache "$cache" "/usr/bin/$p" -o "oci:$tmp/cached-$round-$p:x" >/dev/null 2>&1
		done
		t1=$EPOCHREALTIME
		ct[$round]=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')
	done
	same=yes
	for p in "${progs[@]}"; do
		cmp -s "$tmp/cached-first-$p/index.json" "$tmp/cached-second-$p/index.json" || same=no
	done
	echo "layer cache: six builds take ${ct[first]} s with an empty cache, ${ct[second]} s with every layer cached ($(awk -v a="${ct[second]}" -v b="${ct[first]}" 'BEGIN{printf "%.2fx", a/b}')); same digests: $same"
fi
