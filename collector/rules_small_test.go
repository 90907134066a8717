package collector

import (
	"os"
	"strings"
	"testing"
)

// TestRulesSmallFiles: the files glibc reads by what programs import, against this machine's programs.
func TestRulesSmallFiles(t *testing.T) {
	gconv := "/usr/lib/x86_64-linux-gnu/gconv/"
	if _, err := os.Stat(gconv + "KOI8-R.so"); err != nil {
		t.Skip("no glibc gconv modules on this machine")
	}
	t.Run("getent gets services and protocols", func(t *testing.T) {
		p, notes, err := planned(t, RuleOptions{}, nil, "/usr/bin/getent")
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"/etc/services", "/etc/protocols"} {
			if p.Tree().Resolve(f) == nil {
				t.Errorf("%s missing; notes %q", f, notes)
			}
		}
	})
	t.Run("iconv gets the common 8-bit charsets", func(t *testing.T) {
		p, _, err := planned(t, RuleOptions{}, nil, "/usr/bin/iconv")
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []string{"KOI8-R.so", "ISO8859-1.so", "ISO8859-15.so", "UTF-16.so"} {
			if p.Tree().Resolve(gconv+m) == nil {
				t.Errorf("%s missing", m)
			}
		}
	})
	t.Run("gconv aliases", func(t *testing.T) {
		p, _, err := planned(t, RuleOptions{Gconv: "CP037,latin2"}, nil, "/usr/bin/iconv")
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []string{"IBM037.so", "ISO8859-2.so"} {
			if p.Tree().Resolve(gconv+m) == nil {
				t.Errorf("%s missing (asked for by an alias)", m)
			}
		}
		if _, _, err := planned(t, RuleOptions{Gconv: "NO-SUCH-CHARSET"}, nil, "/usr/bin/iconv"); err == nil {
			t.Errorf("an unknown charset was accepted")
		}
	})
	t.Run("date without --tzdata is warned about", func(t *testing.T) {
		if _, err := os.Stat("/usr/share/zoneinfo"); err != nil {
			t.Skip("no time zones here")
		}
		_, notes, err := planned(t, RuleOptions{}, nil, "/usr/bin/date")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.Join(notes, "\n"), "without --tzdata") {
			t.Errorf("no time zone warning: %q", notes)
		}
		_, notes, err = planned(t, RuleOptions{Base: BaseFiles{TZData: true}}, nil, "/usr/bin/date")
		if err != nil || strings.Contains(strings.Join(notes, "\n"), "without --tzdata") {
			t.Errorf("warned with --tzdata (%v): %q", err, notes)
		}
	})
}
