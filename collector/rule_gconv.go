package collector

import (
	"fmt"
	"path"
	"strings"
)

// gconvRule adds glibc's gconv configuration and converter modules when the closure uses iconv.
type gconvRule struct{}

func (gconvRule) Name() string { return "gconv" }

func (gconvRule) Summary() string {
	return "glibc's gconv-modules configuration and converter modules when the closure imports iconv_open (--gconv auto|all|LIST)"
}

// gconvCommon are the converters added by "auto" (glibc builds UTF-8, UCS-2/4, ASCII and ISO-8859-1's
// internal forms in; these are the other ones programs most often ask for).
var gconvCommon = []string{"UTF-16", "UTF-32", "UTF-7", "UNICODE", "ISO8859-2", "ISO8859-15", "CP1252", "IBM850", "EUC-JP", "SJIS", "GBK", "BIG5"}

func (gconvRule) Apply(v View, o RuleOptions) ([]string, error) {
	libc := glibcLibc(v)
	if libc == "" {
		return nil, nil
	}
	who, _ := v.Importers("iconv_open")
	if len(who) == 0 && (o.Gconv == "" || o.Gconv == "auto") {
		return nil, nil // an explicit list or "all" applies even without an importer
	}
	l, err := v.Lookup(libc)
	if err != nil {
		return nil, err
	}
	dir := path.Join(path.Dir(l.RealPath), "gconv")
	because, by := "gconv modules asked for: "+o.Gconv, ""
	if len(who) > 0 {
		because, by = who[0]+" imports iconv_open", who[0]
	}
	origin := ruleOrigin("gconv", because, by)
	var notes []string
	for _, cfg := range []string{"gconv-modules", "gconv-modules.cache", "gconv-modules.d"} {
		if _, err := v.Lookup(path.Join(dir, cfg)); err != nil {
			continue
		}
		if err := v.AddRootPath(path.Join(dir, cfg), origin); err != nil {
			return nil, err
		}
	}
	var modules []string
	switch o.Gconv {
	case "all":
		if err := v.AddRootPath(dir, origin); err != nil {
			return nil, err
		}
		return []string{fmt.Sprintf("added all of %s: %s", dir, because)}, nil
	case "", "auto":
		modules = gconvCommon
	default:
		modules = strings.Split(o.Gconv, ",")
	}
	var added, missing []string
	for _, m := range modules {
		m = strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(m)), ".SO")
		file := path.Join(dir, m+".so")
		if _, err := v.Lookup(file); err != nil {
			missing = append(missing, m)
			continue
		}
		if err := v.AddRootPath(file, origin); err != nil {
			return nil, err
		}
		added = append(added, m)
	}
	what := "the gconv configuration"
	if len(added) > 0 {
		what += " and " + strings.Join(added, ", ")
	}
	notes = append(notes, fmt.Sprintf("added %s from %s: %s", what, dir, because))
	if len(missing) > 0 {
		if o.Gconv != "" && o.Gconv != "auto" {
			return nil, fmt.Errorf("no gconv module %s in %s", strings.Join(missing, ", "), dir)
		}
		notes = append(notes, "not in the root: "+strings.Join(missing, ", "))
	}
	return notes, nil
}
