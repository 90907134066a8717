package collector

import (
	"fmt"
	"path"
	"strings"
)

// opensslRule adds what OpenSSL 3 loads at run time: providers, engines and its configuration.
type opensslRule struct{}

func (opensslRule) Name() string { return "openssl" }

func (opensslRule) Summary() string {
	return "OpenSSL 3's provider (ossl-modules) and engine directories and openssl.cnf when libcrypto.so.3 is in"
}

func (opensslRule) Apply(v View, _ RuleOptions) ([]string, error) {
	var libcrypto string
	for _, lib := range v.Libraries() {
		if path.Base(lib) == "libcrypto.so.3" {
			libcrypto = lib
		}
	}
	if libcrypto == "" {
		return nil, nil
	}
	l, err := v.Lookup(libcrypto)
	if err != nil {
		return nil, err
	}
	because := libcrypto + " is in (it loads providers, engines and openssl.cnf at run time)"
	origin := ruleOrigin("openssl", because, libcrypto)
	var added []string
	for _, cand := range []string{path.Join(path.Dir(l.RealPath), "ossl-modules"), path.Join(path.Dir(l.RealPath), "engines-3"), "/usr/lib/ssl/openssl.cnf", "/etc/ssl/openssl.cnf"} {
		if _, err := v.Lookup(cand); err != nil {
			continue
		}
		if err := v.AddRootPath(cand, origin); err != nil {
			return nil, err
		}
		added = append(added, cand)
	}
	if len(added) == 0 {
		return nil, nil
	}
	return []string{fmt.Sprintf("added %s: %s", strings.Join(added, ", "), because)}, nil
}
