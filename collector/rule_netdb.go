package collector

import "fmt"

// netdbRule adds the small network databases glibc's lookups read through nsswitch.conf's "files":
// /etc/services for service names (getservbyname, and getaddrinfo with a service name) and /etc/protocols
// for protocol names.
type netdbRule struct{}

func (netdbRule) Name() string { return "netdb" }

func (netdbRule) Summary() string {
	return "/etc/services when the closure imports getservbyname, getservbyport, getservent or getaddrinfo; /etc/protocols for getprotobyname, getprotobynumber, getprotoent"
}

func (netdbRule) Apply(v View, _ RuleOptions) ([]string, error) {
	if glibcLibc(v) == "" {
		return nil, nil
	}
	var notes []string
	for _, db := range []struct {
		file    string
		symbols []string
	}{
		{"/etc/services", []string{"getservbyname", "getservbyname_r", "getservbyport", "getservbyport_r", "getservent", "getservent_r", "getaddrinfo"}},
		{"/etc/protocols", []string{"getprotobyname", "getprotobyname_r", "getprotobynumber", "getprotobynumber_r", "getprotoent", "getprotoent_r"}},
	} {
		if _, ok := v.Entry(db.file); ok {
			continue
		}
		who, sym := v.Importers(db.symbols...)
		if len(who) == 0 {
			continue
		}
		if _, err := v.Lookup(db.file); err != nil {
			notes = append(notes, fmt.Sprintf("the root has no %s, which %s reads (it imports %s)", db.file, who[0], sym[0]))
			continue
		}
		why := fmt.Sprintf("%s imports %s", who[0], sym[0])
		if err := v.AddRootPath(db.file, ruleOrigin("netdb", why, who[0])); err != nil {
			return nil, err
		}
		notes = append(notes, "added "+db.file+": "+why)
	}
	return notes, nil
}
