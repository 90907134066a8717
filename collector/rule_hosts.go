package collector

// hostsRule writes /etc/hosts so that localhost resolves without DNS.
type hostsRule struct{}

func (hostsRule) Name() string { return "hosts" }

func (hostsRule) Summary() string { return "/etc/hosts: localhost without DNS" }

const hostsFile = `127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
`

func (hostsRule) Apply(v View, _ RuleOptions) ([]string, error) {
	return addFixed(v, "/etc/hosts", hostsFile, ruleOrigin("hosts", "localhost resolves without DNS", ""))
}
