#!/usr/bin/env bash
# bench/scanners.sh — what vulnerability scanners see in scratchpack's images, against the truth.
#
# Builds OCI layouts of curl, python3 and nginx with `scratchpack build --sbom spdx` (package metadata on, as by
# default), then asks syft and trivy which Debian packages they find: in the image, and in the SBOM scratchpack
# wrote (syft reads it back with `syft convert FILE`, trivy with `trivy sbom`). The truth is the set of
# Debian packages owning a file of the image (`dpkg -S` of every file, with its merged-/usr twin) with the
# version dpkg has installed (`dpkg-query -W`). A package counts as found when name and version match.
#
# The scanners are built from source at pinned versions with `go install` into $SCANNERS_BIN (default
# $(go env GOPATH)/bin) when missing there: syft v1.57.1, trivy v0.74.0 (GOEXPERIMENT=jsonv2). That takes
# 10+ minutes each on 2 cores, which is why this is a bench script and not part of `make test`; grype v0.121.2
# too. Nothing is downloaded at scan time: syft needs no database, trivy only lists packages (`--format
# cyclonedx`, no vulnerability database), and grype matches against a small database that bench/grypedb builds
# with grype's own writer (the real one cannot be downloaded here): one test record of CVE-2024-0727 against
# the source package openssl in debian:12, fixed above the installed version. grype must then match libssl3
# (a binary of openssl) through its Source: field, in the image and in the SBOM, and nothing without metadata.
#
# Usage: make build && ./bench/scanners.sh      Environment: KEEP=1 keeps the scratch directory.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export LC_ALL=C
unset SOURCE_DATE_EPOCH
BIN=$PWD/bin/scratchpack
SCANNERS_BIN=${SCANNERS_BIN:-$(go env GOPATH)/bin}

say() { printf '%s\n' "$*" >&2; }
die() { say "bench/scanners.sh: $*"; exit 1; }

[[ -x $BIN ]] || die "$BIN is missing: run make build first"
for tool in dpkg-query jq go; do
	command -v "$tool" >/dev/null || die "$tool is not installed"
done
for prog in /usr/bin/curl /usr/bin/python3 /usr/sbin/nginx; do
	[[ -x $prog ]] || die "$prog is not installed (apt-get install curl python3 nginx-light)"
done
mkdir -p "$SCANNERS_BIN"
if [[ ! -x $SCANNERS_BIN/syft ]]; then
	say "building syft v1.57.1 (slow)"
	GOBIN=$SCANNERS_BIN go install github.com/anchore/syft/cmd/syft@v1.57.1
fi
if [[ ! -x $SCANNERS_BIN/trivy ]]; then
	say "building trivy v0.74.0 (slow)"
	GOBIN=$SCANNERS_BIN GOEXPERIMENT=jsonv2 go install github.com/aquasecurity/trivy/cmd/trivy@v0.74.0
fi
if [[ ! -x $SCANNERS_BIN/grype ]]; then
	say "building grype v0.121.2 (slow)"
	GOBIN=$SCANNERS_BIN go install github.com/anchore/grype/cmd/grype@v0.121.2
fi
SYFT=$SCANNERS_BIN/syft
TRIVY=$SCANNERS_BIN/trivy
GRYPE=$SCANNERS_BIN/grype

tmp=$(mktemp -d "${TMPDIR:-/tmp}/scratchpack-bench-scanners.XXXXXX")
if [[ ${KEEP:-0} == 1 ]]; then
	trap 'say "scratch directory kept: $tmp"' EXIT
else
	trap 'rm -rf "$tmp"' EXIT
fi
export TRIVY_CACHE_DIR=$tmp/trivy-cache SYFT_CHECK_FOR_APP_UPDATE=false
export GRYPE_DB_CACHE_DIR=$tmp/grypedb GRYPE_DB_AUTO_UPDATE=false GRYPE_DB_VALIDATE_AGE=false GRYPE_CHECK_FOR_APP_UPDATE=false
say "building the test vulnerability database (bench/grypedb)"
(cd bench/grypedb && GRYPEDB_OUT=$GRYPE_DB_CACHE_DIR go test -count=1 ./... >/dev/null) || die "building the grype database failed"
# grype_libssl3 SOURCE: how grype matched CVE-2024-0727 to libssl3 in SOURCE ("none" when it did not).
grype_libssl3() {
	"$GRYPE" -q "$1" -o json 2>>"$tmp/log" |
		jq -r '[.matches[] | select(.vulnerability.id == "CVE-2024-0727" and .artifact.name == "libssl3") | .matchDetails[0].type] | first // "none"'
}
grows=()

# truth ROOT: "name version" of every Debian package owning a file of the built root.
truth() {
	local root=$1 q=() p
	while IFS= read -r p; do
		p=${p#"$root"}
		case $p in
		/var/lib/dpkg/status.d/* | /var/lib/scratchpack/*) continue ;;
		/usr/bin/* | /usr/sbin/* | /usr/lib/*) q+=("$p" "${p#/usr}") ;;
		/bin/* | /sbin/* | /lib/*) q+=("$p" "/usr$p") ;;
		*) q+=("$p") ;;
		esac
	done < <(find "$root" \( -type f -o -type l \) -exec test -f {} \; -print)
	{ dpkg-query -S "${q[@]}" 2>/dev/null || true; } |
		awk -F': ' '!/^diversion / && NF >= 2 { n = split($1, a, ", "); for (i = 1; i <= n; i++) { sub(/:.*/, "", a[i]); print a[i] } }' |
		sort -u | while read -r pkg; do
		printf '%s %s\n' "$pkg" "$(dpkg-query -W -f '${Version}' "$pkg" 2>/dev/null | head -1)"
	done
}

# found FILE: how many of the truth's "name version" lines FILE also has.
found() { comm -12 "$1" "$2" | wc -l; }

rows=()
for prog in /usr/bin/curl /usr/bin/python3 /usr/sbin/nginx; do
	name=$(basename "$prog")
	layout=$tmp/$name-oci root=$tmp/$name-root sbom=$tmp/$name.spdx.json
	say "== $name"
	"$BIN" build "$prog" --sbom spdx --sbom-file "$sbom" -o "oci:$layout:latest" >/dev/null 2>>"$tmp/log" || die "building $name failed (see $tmp/log, KEEP=1)"
	"$BIN" build "$prog" -o "dir:$root" >/dev/null 2>>"$tmp/log" || die "building $name's root failed"
	"$BIN" build "$prog" --package-metadata=false -o "oci:$layout-bare:latest" >/dev/null 2>>"$tmp/log" || die "building $name without metadata failed"
	truth "$root" | sort -u >"$tmp/$name.truth"
	total=$(wc -l <"$tmp/$name.truth")

	"$SYFT" scan -q "oci-dir:$layout" -o json 2>>"$tmp/log" |
		jq -r '.artifacts[] | select(.type == "deb") | "\(.name) \(.version)"' | sort -u >"$tmp/$name.syft-image"
	"$SYFT" scan -q "oci-dir:$layout-bare" -o json 2>>"$tmp/log" |
		jq -r '.artifacts[] | select(.type == "deb") | "\(.name) \(.version)"' | sort -u >"$tmp/$name.syft-bare"
	"$SYFT" convert "$sbom" -o syft-json 2>>"$tmp/log" |
		jq -r '.artifacts[] | select(.type == "deb") | "\(.name) \(.version)"' | sort -u >"$tmp/$name.syft-sbom" || true
	"$TRIVY" image -q --offline-scan --skip-version-check --input "$layout" --format cyclonedx 2>>"$tmp/log" |
		jq -r '.components[]? | select(.purl? // "" | startswith("pkg:deb/")) | "\(.name) \(.version)"' | sort -u >"$tmp/$name.trivy-image" || true
	"$TRIVY" sbom -q --offline-scan --skip-version-check --format cyclonedx "$sbom" 2>>"$tmp/log" |
		jq -r '.components[]? | select(.purl? // "" | startswith("pkg:deb/")) | "\(.name) \(.version)"' | sort -u >"$tmp/$name.trivy-sbom" || true
	if [[ $name == curl ]]; then
		grows+=("$(printf '| %s | %s | %s | %s |' "$name" "$(grype_libssl3 "oci-dir:$layout-bare")" "$(grype_libssl3 "oci-dir:$layout")" "$(grype_libssl3 "sbom:$sbom")")")
	fi
	rows+=("$(printf '| %s | %d | %d | %d | %d | %d | %d |' "$name" "$total" "$(found "$tmp/$name.truth" "$tmp/$name.syft-bare")" \
		"$(found "$tmp/$name.truth" "$tmp/$name.syft-image")" "$(found "$tmp/$name.truth" "$tmp/$name.syft-sbom")" \
		"$(found "$tmp/$name.truth" "$tmp/$name.trivy-image")" "$(found "$tmp/$name.truth" "$tmp/$name.trivy-sbom")")")
done

printf '\nscratchpack %s, %s, syft v1.57.1, trivy v0.74.0, grype v0.121.2 (go install), %s\n\n' "$(git describe --always --dirty 2>/dev/null || echo '?')" \
	"$(. /etc/os-release && echo "$PRETTY_NAME")" "$(date -u +%Y-%m-%d)"
printf '%s\n' "| image | owning packages (dpkg -S) | syft: image without metadata | syft: image | syft: our SBOM | trivy: image | trivy: our SBOM |"
printf '%s\n' "| --- | --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
printf '\n%s\n' "| image | grype: CVE-2024-0727 on libssl3, image without metadata | image | our SBOM |"
printf '%s\n' "| --- | --- | --- | --- |"
printf '%s\n' "${grows[@]}"
