#!/usr/bin/env bash
# bench/runtime.sh — what the run-time rules and --trace add to an image, against copying whole packages.
#
# For each workload (python3 traced with a few C-extension imports, a Perl script with XS modules traced,
# the dlopen fixture traced, the iconv fixture with its rules alone and traced) it builds the image with
# `scratchpack build ... -o dir:ROOT`, then asks `--explain` why each file is in, and sorts every regular
# file by the step of the build that added it (the build goes closure, then traces, then rules, so a file two
# steps want counts for the first):
#   closure  the inputs, their ELF closure, #! interpreters (and for #!/usr/bin/env, the program on PATH)
#   traced   "traced ..." or "strace log ...": files a traced run used that nothing else had added, and
#            their ELF closure
#   rules    "NAME rule: ...": files a run-time rule added (accounts, certs, gconv, openssl, libgcc_s...), and
#            their ELF closure
# A library another file needs (libssl for a traced extension module, libJIS.so for a gconv module) counts
# where the chain of reasons --explain prints ends, not where its first link does.
# It then compares the image with what a package-based image would copy: the Debian packages owning any file
# of the image (dpkg -S of every file and link, with its merged-/usr twin: /lib/... for /usr/lib/...), and
# the sum of the regular files those packages install (dpkg -L, each real file counted once).
#
# Then the real-world suite's programs, each built without a trace (closure and rules only).
#
# Usage: make build && ./bench/runtime.sh      Environment: KEEP=1 keeps the scratch directory.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

BIN=bin/scratchpack
export LC_ALL=C
unset SOURCE_DATE_EPOCH

say() { printf '%s\n' "$*" >&2; }
die() { say "bench/runtime.sh: $*"; exit 1; }
mib() { awk -v n="$1" 'BEGIN{printf "%.2f", n/1048576}'; }

[[ -x $BIN ]] || die "$BIN is missing: run make build first"
for tool in dpkg-query stat awk make gcc; do
	command -v "$tool" >/dev/null || die "$tool is not installed"
done
for prog in /usr/bin/python3 /usr/bin/perl; do
	[[ -x $prog ]] || die "$prog is not installed (.ci/install-deps installs it)"
done
make -s -C fixtures build/dlopen/prog build/iconv/prog

tmp=$(mktemp -d "${TMPDIR:-/tmp}/scratchpack-bench-runtime.XXXXXX")
if [[ ${KEEP:-0} == 1 ]]; then
	trap 'say "scratch directory kept: $tmp"' EXIT
else
	trap 'rm -rf "$tmp"' EXIT
fi

# The Perl workload: a script using POSIX, Data::Dumper and List::Util (each has an XS shared object).
script=$tmp/report.pl
cat >"$script" <<'EOF'
#!/usr/bin/perl
use strict;
use warnings;
use POSIX qw(floor strftime);
use Data::Dumper;
use List::Util qw(sum max first);
$Data::Dumper::Sortkeys = 1;
my @n = (3, 1, 4, 1, 5, 9, 2, 6);
print floor(7.9), " ", strftime("%Y-%m-%d", gmtime(0)), " ", sum(@n), " ", max(@n), " ", (first { $_ > 4 } @n), "\n";
print Dumper({ a => 1, b => [2, 3] });
EOF
chmod 755 "$script"
dlopen=$PWD/fixtures/build/dlopen/prog
iconv=$PWD/fixtures/build/iconv/prog
pywork='import json, ssl, sqlite3, hashlib, ctypes; print("ok")'

# classify EXPLAIN: one line per path, "KIND<TAB>CATEGORY<TAB>PATH", KIND file, link or dir, CATEGORY from its
# first reason, or when that is a library need ("NAME needed by X"), from the root of its chain (the last
# "<- X: REASON" line).
classify() {
	awk '
	function category(r) {
		if (r ~ /^[a-z0-9_-]+ rule: /) return "rules"
		if (r ~ /^traced / || r ~ /^strace log /) return "traced"
		return "closure"
	}
	function emit(c) {
		if (cur == "") return
		c = category(first)
		if (c == "closure" && root != "") c = category(root)
		print kind "\t" c "\t" cur
	}
	/^ / {
		r = $0; sub(/^ +/, "", r)
		if (r ~ /^<- /) { sub(/^<- [^ ]*: /, "", r); root = r }
		else if (first == "") first = r
		next
	}
	{
		emit()
		cur = $0; kind = "file"; first = ""; root = ""
		if (i = index(cur, " -> ")) { kind = "link"; cur = substr(cur, 1, i - 1) }
		else if (cur ~ /.\/$/) { kind = "dir"; sub(/\/$/, "", cur) }
	}
	END { emit() }' "$1"
}

# owners PATH...: the Debian packages owning any of the paths or their merged-/usr twins, one per line.
owners() {
	local p q=()
	for p in "$@"; do
		case $p in
		/bin | /sbin | /lib | /lib64 | /lib32 | /libx32) continue ;; # the merged-/usr links themselves
		/usr/bin/* | /usr/sbin/* | /usr/lib/* | /usr/lib64/*) q+=("$p" "${p#/usr}") ;;
		/bin/* | /sbin/* | /lib/* | /lib64/*) q+=("$p" "/usr$p") ;;
		*) q+=("$p") ;;
		esac
	done
	((${#q[@]})) || return 0
	# "pkg1, pkg2: /path" for each path found; "diversion by..." lines and misses are left out.
	{ dpkg-query -S "${q[@]}" 2>/dev/null || true; } |
		awk -F': ' '!/^diversion / && NF >= 2 { n = split($1, a, ", "); for (i = 1; i <= n; i++) print a[i] }' | sort -u
}

# package_files PKG...: "FILES BYTES" of the regular files the packages install, each real file once.
package_files() {
	local f
	dpkg-query -L "$@" 2>/dev/null | sort -u | while IFS= read -r f; do
		[[ -f $f && ! -L $f ]] && printf '%s\n' "$f"
	done | xargs -r -d '\n' readlink -f | sort -u | xargs -r -d '\n' stat -c %s | awk '{n++; s += $1} END {print n + 0, s + 0}'
}

rows=()
details=()
n=0
# measure NAME BUILD-ARGS...: build, explain, count, compare.
measure() {
	local name=$1
	shift
	n=$((n + 1))
	local root=$tmp/root-$n ex=$tmp/explain-$n
	say "== $name: scratchpack build $*"
	"$BIN" build -o "dir:$root" "$@" >/dev/null 2>>"$tmp/log" || die "building $name failed: see $tmp/log (KEEP=1)"
	"$BIN" build --explain "$@" >"$ex" 2>>"$tmp/log" || die "--explain for $name failed"

	declare -A files=([closure]=0 [traced]=0 [rules]=0) bytes=([closure]=0 [traced]=0 [rules]=0)
	local kind cat p size total_f=0 total_b=0 query=()
	while IFS=$'\t' read -r kind cat p; do
		[[ $kind == dir ]] && continue
		query+=("$p")
		[[ $kind == file ]] || continue
		size=$(stat -c %s "$root$p")
		files[$cat]=$((files[$cat] + 1))
		bytes[$cat]=$((bytes[$cat] + size))
		total_f=$((total_f + 1))
		total_b=$((total_b + size))
	done < <(classify "$ex")
	local on_disk
	on_disk=$(find "$root" -type f | wc -l)
	if ((on_disk != total_f)); then
		say "   warning: --explain lists $total_f regular files, the built root holds $on_disk"
	fi

	local pkgs pf pb
	mapfile -t pkgs < <(owners "${query[@]}")
	read -r pf pb < <(package_files "${pkgs[@]}")
	rows+=("$(printf '| %s | %d / %s | %d / %s | %d / %s | %d / %s | %d | %d / %s | %s |' "$name" \
		"$total_f" "$(mib "$total_b")" \
		"${files[closure]}" "$(mib "${bytes[closure]}")" \
		"${files[traced]}" "$(mib "${bytes[traced]}")" \
		"${files[rules]}" "$(mib "${bytes[rules]}")" \
		"${#pkgs[@]}" "$pf" "$(mib "$pb")" \
		"$(awk -v a="$total_b" -v b="$pb" 'BEGIN{ if (b > 0) printf "%.1f%%", 100 * a / b; else print "-" }')")")
	details+=("$name: ${pkgs[*]}")
}

measure "python3 (traced)" /usr/bin/python3 --trace -- python3 -c "$pywork"
measure "perl script (traced)" "$script" --trace -- /usr/bin/perl "$script"
measure "dlopen fixture (traced)" "$dlopen" --trace -- "$dlopen"
measure "iconv fixture (rules)" "$iconv"
measure "iconv fixture (traced)" "$iconv" --trace -- "$iconv"

# The real-world suite's programs (cmd/scratchpack/realworld_test.go), built without a trace: what the
# literals, java and shell rules add must stay well below copying their packages.
J=/usr/lib/jvm/java-17-openjdk-amd64/bin
PG=/usr/lib/postgresql/15/bin
for prog in /usr/bin/git /usr/bin/tar /usr/bin/gpg /usr/bin/file /usr/bin/gawk /usr/bin/convert /usr/bin/make \
	/usr/bin/openssl /usr/bin/ssh-keygen /usr/bin/sqlite3 /usr/bin/curl /usr/bin/getent "$J/keytool"; do
	[[ -e $prog ]] || die "$prog is not installed (.ci/install-deps installs it)"
	measure "$(basename "$prog") (static)" "$prog"
done
measure "initdb, pg_ctl, psql (static)" "$PG/initdb" "$PG/pg_ctl" "$PG/psql"

# Interpreter scripts of the suite, built without a trace (the python, perl, ruby, php and tcl rules).
cat >"$tmp/app.py" <<'EOF'
#!/usr/bin/python3
import json, sqlite3, ssl
from zoneinfo import ZoneInfo
print(json.dumps({"n": sqlite3.connect(":memory:").execute("select 41+1").fetchone()[0], "tz": str(ZoneInfo("Europe/Berlin")), "ssl": ssl.OPENSSL_VERSION}))
EOF
cat >"$tmp/app.pl" <<'EOF'
#!/usr/bin/perl
use strict;
use warnings;
use POSIX qw(floor);
use List::Util qw(sum);
use Encode qw(encode decode);
print floor(7.9), " ", sum(1, 2, 3), " ", length(encode("UTF-16LE", decode("UTF-8", "\xc3\xa4"))), "\n";
EOF
cat >"$tmp/app.rb" <<'EOF'
#!/usr/bin/ruby
require "json"
require "digest"
puts JSON.generate({"sha" => Digest::SHA256.hexdigest("abc")})
EOF
cat >"$tmp/app.php" <<'EOF'
#!/usr/bin/php
<?php
echo ctype_digit("123") ? "digits" : "no", iconv("UTF-8", "ISO-8859-1", "x"), "\n";
EOF
cat >"$tmp/app.tcl" <<'EOF'
#!/usr/bin/tclsh
puts [clock format 0 -gmt 1]
EOF
chmod 755 "$tmp"/app.*
for s in py pl rb php tcl; do
	measure "app.$s (static)" "$tmp/app.$s"
done

printf '\nscratchpack %s, %s, %s\n\n' "$(git describe --always --dirty 2>/dev/null || echo '?')" \
	"$(. /etc/os-release && echo "$PRETTY_NAME")" "$(date -u +%Y-%m-%d)"
printf '%s\n' "| workload | image: files / MiB | closure: files / MiB | traced: files / MiB | rules: files / MiB | packages | packages: files / MiB | image / packages |"
printf '%s\n' "| --- | --- | --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
printf '\nPackages owning the images'"'"' files (dpkg -S):\n'
printf '  %s\n' "${details[@]}"
