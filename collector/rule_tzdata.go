package collector

import "fmt"

// tzdataRule adds the root's time zone database when asked.
type tzdataRule struct{}

func (tzdataRule) Name() string { return "tzdata" }

func (tzdataRule) Summary() string { return "/usr/share/zoneinfo, with --tzdata" }

// tzSymbols are what reads the time zone (TZ, /etc/localtime, /usr/share/zoneinfo) in glibc.
var tzSymbols = []string{"localtime", "localtime_r", "tzset", "mktime", "timelocal"}

func (tzdataRule) Apply(v View, o RuleOptions) ([]string, error) {
	if !o.Base.TZData {
		if who, sym := v.Importers(tzSymbols...); len(who) > 0 && glibcLibc(v) != "" {
			if _, err := v.Lookup("/usr/share/zoneinfo"); err == nil {
				return []string{fmt.Sprintf("%s reads time zones (it imports %s): without --tzdata, only UTC works in the image (TZ=Europe/Berlin falls back to UTC silently)", who[0], sym[0])}, nil
			}
		}
		return nil, nil
	}
	if err := v.AddRootPath("/usr/share/zoneinfo", ruleOrigin("tzdata", "time zones asked for", "")); err != nil {
		return nil, fmt.Errorf("adding time zones: %w", err)
	}
	return []string{"added /usr/share/zoneinfo"}, nil
}
