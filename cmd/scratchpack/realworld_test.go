package main

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

// realCase is one real Debian program doing real work inside a root built for it without a trace.
type realCase struct {
	name  string
	kind  string     // what the static closure must find: helper, plugin, data, soname, netdb, locale, gconv, tz, or plain
	files []string   // the FILEs to build
	args  []string   // more build flags
	user  string     // the root's user to run as (its ids from /etc/passwd)
	env   []string   // besides PATH and HOME=/tmp
	steps [][]string // run in order; the last one's output is checked
	ok    []int      // exit codes that are success for the last step besides 0
	want  string     // the last step's stdout+stderr must contain it
	file  [2]string  // or: a file of the root (after the run) must contain a text
	// trace, when the program still needs a traced run: the traced workload (differing from steps) and why.
	trace []string
	why   string
}

const realText = "alpha\nbeta\n"

var realCases = []realCase{
	// Plain: the loader's closure and the base rules.
	{name: "sqlite3", kind: "plain", files: []string{"/usr/bin/sqlite3"},
		steps: [][]string{{"sqlite3", "/tmp/t.db", "create table t(a); insert into t values (41); select a+1 from t;"}}, want: "42"},
	{name: "jq", kind: "plain", files: []string{"/usr/bin/jq"}, steps: [][]string{{"jq", "-n", "[1,2,3] | add"}}, want: "6"},
	{name: "xz", kind: "plain", files: []string{"/usr/bin/xz"},
		steps: [][]string{{"xz", "-k", "/data/a.txt"}, {"xz", "-dc", "/data/a.txt.xz"}}, want: realText},
	{name: "zstd", kind: "plain", files: []string{"/usr/bin/zstd"},
		steps: [][]string{{"zstd", "-q", "/data/a.txt", "-o", "/tmp/a.zst"}, {"zstd", "-dc", "/tmp/a.zst"}}, want: realText},
	{name: "bzip2", kind: "plain", files: []string{"/usr/bin/bzip2"},
		steps: [][]string{{"bzip2", "-k", "/data/a.txt"}, {"bzip2", "-dc", "/data/a.txt.bz2"}}, want: realText},
	{name: "ssh-keygen", kind: "plain", files: []string{"/usr/bin/ssh-keygen"},
		steps: [][]string{{"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", "/tmp/k"}, {"ssh-keygen", "-l", "-f", "/tmp/k.pub"}}, want: "(ED25519)"},
	{name: "curl file://", kind: "plain", files: []string{"/usr/bin/curl"}, steps: [][]string{{"curl", "-s", "file:///data/a.txt"}}, want: realText},
	{name: "diff", kind: "plain", files: []string{"/usr/bin/diff"}, steps: [][]string{{"diff", "-u", "/data/a.txt", "/data/b.txt"}}, ok: []int{1}, want: "+gamma"},
	{name: "zip and unzip", kind: "plain", files: []string{"/usr/bin/zip", "/usr/bin/unzip"},
		steps: [][]string{{"zip", "-q", "/tmp/a.zip", "/data/a.txt"}, {"unzip", "-l", "/tmp/a.zip"}}, want: "data/a.txt"},
	{name: "bc -l", kind: "plain", files: []string{"/usr/bin/bc"}, steps: [][]string{{"bc", "-l", "/data/pi.bc"}}, want: "3.1415"},
	{name: "patch", kind: "plain", files: []string{"/usr/bin/patch"},
		steps: [][]string{{"patch", "-o", "/tmp/out.txt", "/data/a.txt", "/data/a.diff"}}, file: [2]string{"tmp/out.txt", "gamma"}},
	{name: "msgfmt", kind: "plain", files: []string{"/usr/bin/msgfmt"},
		steps: [][]string{{"msgfmt", "--statistics", "-o", "/tmp/a.mo", "/data/a.po"}}, want: "1 translated message"},

	// Helper programs they run.
	{name: "git clone", kind: "helper", files: []string{"/usr/bin/git"}, steps: [][]string{
		{"git", "init", "-q", "/tmp/src"},
		{"git", "-C", "/tmp/src", "-c", "user.name=a", "-c", "user.email=a@example.org", "commit", "-q", "--allow-empty", "-m", "first"},
		{"git", "clone", "-q", "--no-local", "file:///tmp/src", "/tmp/dst"}, // runs git-upload-pack
		{"git", "-C", "/tmp/dst", "log", "--format=%s"}}, want:              "first"},
	{name: "tar -J", kind: "helper", files: []string{"/usr/bin/tar"},
		steps: [][]string{{"tar", "-cJf", "/tmp/a.tar.xz", "-C", "/data", "a.txt"}, {"tar", "-tJvf", "/tmp/a.tar.xz"}}, want: "a.txt"},
	{name: "gpg with gpg-agent", kind: "helper", files: []string{"/usr/bin/gpg"}, steps: [][]string{
		{"gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "pw", "--symmetric", "-o", "/tmp/a.gpg", "/data/a.txt"},
		{"gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "pw", "-d", "/tmp/a.gpg"}}, want: realText},
	{name: "zcat (a script running gzip)", kind: "helper", files: []string{"/usr/bin/zcat", "/usr/bin/gzip"},
		steps: [][]string{{"gzip", "-k", "-n", "/data/a.txt"}, {"zcat", "/data/a.txt.gz"}}, want: realText},
	{name: "make runs /bin/sh", kind: "helper", files: []string{"/usr/bin/make"}, steps: [][]string{{"make", "-s", "-f", "/data/Makefile"}}, want: "made-2"},
	{name: "PostgreSQL initdb, pg_ctl, psql", kind: "helper", user: "postgres",
		files: []string{"/usr/lib/postgresql/15/bin/initdb", "/usr/lib/postgresql/15/bin/pg_ctl", "/usr/lib/postgresql/15/bin/psql"},
		args:  []string{"--user", "postgres"},
		steps: [][]string{
			{"/usr/lib/postgresql/15/bin/initdb", "-A", "trust", "-U", "postgres", "-D", "/tmp/pg"},
			{"/usr/lib/postgresql/15/bin/pg_ctl", "-D", "/tmp/pg", "-o", "-k /tmp -c listen_addresses=", "-l", "/tmp/pg.log", "-w", "start"},
			{"/usr/lib/postgresql/15/bin/psql", "-h", "/tmp", "-U", "postgres", "-d", "postgres", "-tAc", "select 40 + 2"},
		}, want: "42"},

	// Plugins and modules they load.
	{name: "gawk -l ordchr", kind: "plugin", files: []string{"/usr/bin/gawk"},
		steps: [][]string{{"gawk", "-l", "ordchr", `BEGIN { print ord("A") }`}}, want: "65"},
	{name: "ImageMagick convert", kind: "plugin", files: []string{"/usr/bin/convert"}, steps: [][]string{
		{"convert", "-size", "4x3", "xc:red", "/tmp/a.png"}, {"convert", "/tmp/a.png", "-format", "%wx%h %m", "info:"}}, want: "4x3 PNG"},
	{name: "openssl req", kind: "plugin", files: []string{"/usr/bin/openssl"}, steps: [][]string{
		{"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "/tmp/k.pem", "-out", "/tmp/c.pem", "-subj", "/CN=realworld", "-days", "1"},
		{"openssl", "x509", "-in", "/tmp/c.pem", "-noout", "-subject"}}, want: "CN = realworld"},
	{name: "Java keytool", kind: "java", files: []string{"/usr/lib/jvm/java-17-openjdk-amd64/bin/keytool"}, steps: [][]string{
		{"/usr/lib/jvm/java-17-openjdk-amd64/bin/keytool", "-genkeypair", "-alias", "a", "-keyalg", "RSA", "-dname", "CN=a", "-keystore", "/tmp/ks", "-storepass", "secret1", "-keypass", "secret1"},
		{"/usr/lib/jvm/java-17-openjdk-amd64/bin/keytool", "-list", "-keystore", "/tmp/ks", "-storepass", "secret1"}}, want: "PrivateKeyEntry"},

	// Data compiled in.
	{name: "file (magic database)", kind: "data", files: []string{"/usr/bin/file"}, steps: [][]string{{"file", "/data/a.png"}}, want: "PNG image data, 4 x 3"},

	// Small system files, locales, charsets, time zones.
	{name: "getent services", kind: "netdb", files: []string{"/usr/bin/getent"}, steps: [][]string{{"getent", "services", "http"}}, want: "80/tcp"},
	{name: "sort in German", kind: "locale", files: []string{"/usr/bin/sort"}, args: []string{"--locale", "de_DE.UTF-8"},
		env: []string{"LC_ALL=de_DE.UTF-8"}, steps: [][]string{{"sort", "/data/words.txt"}}, want: "Apfel\nÄpfel\nZebra\n"},
	{name: "iconv from KOI8-R", kind: "gconv", files: []string{"/usr/bin/iconv"},
		steps: [][]string{{"iconv", "-f", "KOI8-R", "-t", "UTF-8", "/data/koi8r.txt"}}, want: "Привет"},
	// Interpreters, from roots built without a trace (the python, perl, ruby, php and tcl rules).
	{name: "Python app (json, sqlite3, ssl, zoneinfo)", kind: "interpreter", files: []string{"$DATA/app.py"},
		steps: [][]string{{"$DATA/app.py"}}, want: `{"n": 42, "tz": "01:00", "ssl": "OpenSSL"}`},
	{name: "Perl script (POSIX, List::Util, Data::Dumper, Encode)", kind: "interpreter", files: []string{"$DATA/rep.pl"},
		steps: [][]string{{"$DATA/rep.pl"}}, want: "7 6 2 dumper"},
	{name: "Ruby script (json, digest)", kind: "interpreter", files: []string{"$DATA/app.rb"},
		steps: [][]string{{"$DATA/app.rb"}}, want: `{"sha":"ba7816bf","n":3}`},
	{name: "PHP script (ctype, iconv)", kind: "interpreter", files: []string{"$DATA/app.php"},
		steps: [][]string{{"$DATA/app.php"}}, want: "digits latin1"},
	{name: "Tcl script (clock, lsort)", kind: "interpreter", files: []string{"$DATA/app.tcl"},
		steps: [][]string{{"$DATA/app.tcl"}}, want: "1970\na b c\nHELLO"},
	{name: "date in Berlin", kind: "tz", files: []string{"/usr/bin/date"}, args: []string{"--tzdata"}, env: []string{"TZ=Europe/Berlin"},
		steps: [][]string{{"date", "-d", "@0", "+%H:%M %Z"}}, want: "01:00 CET"},
}

// realData are the files every case finds under /data.
var realData = map[string]string{
	"a.txt":     realText,
	"b.txt":     "alpha\nbeta\ngamma\n",
	"a.diff":    "--- a.txt\n+++ a.txt\n@@ -1,2 +1,3 @@\n alpha\n beta\n+gamma\n",
	"pi.bc":     "scale=5\n4*a(1)\nquit\n",
	"Makefile":  "all:\n\t@echo made-$$((1+1))\n",
	"a.po":      "msgid \"\"\nmsgstr \"Content-Type: text/plain; charset=UTF-8\\n\"\n\nmsgid \"hello\"\nmsgstr \"hallo\"\n",
	"words.txt": "Zebra\nÄpfel\nApfel\n",
	"app.py": "#!/usr/bin/python3\nimport json, sqlite3, ssl\nfrom zoneinfo import ZoneInfo\nfrom datetime import datetime, timezone\n" +
		"db = sqlite3.connect(':memory:')\ndb.execute('create table t(a)')\ndb.execute('insert into t values (41)')\n" +
		"n = db.execute('select a+1 from t').fetchone()[0]\nssl.create_default_context()\n" +
		"tz = datetime(2020, 1, 1, tzinfo=timezone.utc).astimezone(ZoneInfo('Europe/Berlin')).strftime('%H:%M')\n" +
		"print(json.dumps({'n': n, 'tz': tz, 'ssl': ssl.OPENSSL_VERSION.split()[0]}))\n",
	"rep.pl": "#!/usr/bin/perl\nuse strict;\nuse warnings;\nuse POSIX qw(floor);\nuse List::Util qw(sum);\nuse Data::Dumper;\n" +
		"use Encode qw(encode decode);\nmy $u = decode('UTF-8', \"\\xc3\\xa4\");\nmy $b = encode('UTF-16LE', $u);\n" +
		"print floor(7.9), ' ', sum(1, 2, 3), ' ', length($b), ' ', (Dumper([1]) =~ /1/ ? 'dumper' : ''), \"\\n\";\n",
	"app.rb":  "#!/usr/bin/ruby\nrequire 'json'\nrequire 'digest'\nputs JSON.generate({'sha' => Digest::SHA256.hexdigest('abc')[0, 8], 'n' => [1, 2].sum})\n",
	"app.php": "#!/usr/bin/php\n<?php\necho ctype_digit('123') ? 'digits' : 'no', ' ', iconv('UTF-8', 'ISO-8859-1', \"\\u{e4}\") === \"\\xe4\" ? 'latin1' : 'fail', \"\\n\";\n",
	"app.tcl": "#!/usr/bin/tclsh\nputs [clock format 0 -format %Y -gmt 1]\nputs [lsort {c a b}]\nputs [string toupper hello]\n",
	// A PNG header: its type comes only from the magic database.
	"a.png": "\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x00\x04\x00\x00\x00\x03\x08\x02\x00\x00\x00\x00\x00\x00\x00",
	// "Привет" in KOI8-R.
	"koi8r.txt": "\xf0\xd2\xc9\xd7\xc5\xd4\n",
}

// TestRealWorld builds a root for each real program without --trace and runs its workload there (under
// chroot, with /dev and /proc). It prints "N passed, M failed" for the static builds; a case that still
// needs a trace is then built with --trace of another workload and must pass that way.
func TestRealWorld(t *testing.T) {
	needRoot(t)
	data := t.TempDir()
	for name, content := range realData {
		if err := os.WriteFile(filepath.Join(data, name), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	passed, failed := 0, 0
	var failures []string
	for _, tc := range realCases {
		for _, f := range tc.files {
			if _, err := os.Stat(strings.ReplaceAll(f, "$DATA", data)); err != nil {
				t.Fatalf("%s: %s is not installed: run .ci/install-deps", tc.name, f)
			}
		}
		err := realRun(t, tc, data, false)
		switch {
		case err == nil:
			passed++
			if tc.trace != nil {
				t.Errorf("%s passes without a trace now: drop its trace", tc.name)
			}
		case tc.trace != nil:
			failed++
			failures = append(failures, fmt.Sprintf("%s (needs a trace: %s)", tc.name, tc.why))
			if err := realRun(t, tc, data, true); err != nil {
				t.Errorf("%s with --trace of %q: %v", tc.name, tc.trace, err)
			}
		default:
			failed++
			failures = append(failures, tc.name)
			t.Errorf("%s [%s]: %v", tc.name, tc.kind, err)
		}
	}
	fmt.Printf("realworld: %d passed, %d failed\n", passed, failed)
	if len(failures) > 0 {
		fmt.Printf("realworld: without a trace: %s\n", strings.Join(failures, "; "))
	}
	if passed < len(realCases)-2 {
		t.Errorf("only %d of %d real programs work without a trace", passed, len(realCases))
	}
}

// realRun builds tc's root (with --trace of tc.trace when traced) and runs its steps there.
func realRun(t *testing.T, tc realCase, data string, traced bool) error {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	sub := func(s string) string { return strings.ReplaceAll(s, "$DATA", data) }
	var args []string
	for _, f := range tc.files {
		args = append(args, sub(f))
	}
	args = append(args, "--add", data+":/data", "-o", "dir:"+root)
	args = append(args, tc.args...)
	if traced {
		args = append(args, "--trace="+strings.Join(tc.trace, " "))
	}
	code, _, stderr := scratchpack(t, append([]string{"build"}, args...)...)
	if code != 0 {
		return fmt.Errorf("build: exit %d: %s", code, stderr)
	}
	ids := ""
	if tc.user != "" {
		u, err := user.Lookup(tc.user)
		if err != nil {
			return err
		}
		ids = u.Uid + ":" + u.Gid
		// The data and /tmp belong to the user the workload runs as.
		if err := chownTree(root, ids, "data", "tmp"); err != nil {
			return err
		}
	}
	env := append([]string{"HOME=/tmp"}, tc.env...)
	var out string
	for i, step := range tc.steps {
		var argv []string
		for _, a := range step {
			argv = append(argv, sub(a))
		}
		stdout, stderr, err := runInRootAs(t, root, ids, env, argv...)
		out = stdout + stderr
		last := i == len(tc.steps)-1
		if err != nil && !(last && exitIn(err, tc.ok)) {
			return fmt.Errorf("step %q: %v\n%s", step, err, out)
		}
	}
	if tc.want != "" && !strings.Contains(out, tc.want) {
		return fmt.Errorf("output %q lacks %q", out, tc.want)
	}
	if tc.file[0] != "" {
		b, err := os.ReadFile(filepath.Join(root, tc.file[0]))
		if err != nil || !strings.Contains(string(b), tc.file[1]) {
			return fmt.Errorf("/%s: %q, %v; want %q in it", tc.file[0], b, err, tc.file[1])
		}
	}
	return nil
}

func exitIn(err error, codes []int) bool {
	var code int
	if _, scanErr := fmt.Sscanf(err.Error(), "exit status %d", &code); scanErr != nil {
		return false
	}
	for _, c := range codes {
		if c == code {
			return true
		}
	}
	return false
}

// chownTree gives the trees under root to the user ids "UID:GID".
func chownTree(root, ids string, dirs ...string) error {
	var uid, gid int
	if _, err := fmt.Sscanf(ids, "%d:%d", &uid, &gid); err != nil {
		return err
	}
	for _, d := range dirs {
		err := filepath.Walk(filepath.Join(root, d), func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, uid, gid)
		})
		if err != nil {
			return err
		}
	}
	return nil
}
