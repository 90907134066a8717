package collector

import "fmt"

// tzdataRule adds the root's time zone database when asked.
type tzdataRule struct{}

func (tzdataRule) Name() string { return "tzdata" }

func (tzdataRule) Summary() string { return "/usr/share/zoneinfo, with --tzdata" }

func (tzdataRule) Apply(v View, o RuleOptions) ([]string, error) {
	if !o.Base.TZData {
		return nil, nil
	}
	if err := v.AddRootPath("/usr/share/zoneinfo", ruleOrigin("tzdata", "time zones asked for", "")); err != nil {
		return nil, fmt.Errorf("adding time zones: %w", err)
	}
	return []string{"added /usr/share/zoneinfo"}, nil
}
