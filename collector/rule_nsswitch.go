package collector

// nsswitchRule writes /etc/nsswitch.conf unless the image has one.
type nsswitchRule struct{}

func (nsswitchRule) Name() string { return "nsswitch" }

func (nsswitchRule) Summary() string {
	return "/etc/nsswitch.conf: files for accounts, files then dns for hosts"
}

const nsswitchConf = `# Written by scratchpack: files first, then DNS for hosts.
passwd:    files
group:     files
shadow:    files
hosts:     files dns
networks:  files
protocols: files
services:  files
ethers:    files
rpc:       files
`

func (nsswitchRule) Apply(v View, _ RuleOptions) ([]string, error) {
	return addFixed(v, "/etc/nsswitch.conf", nsswitchConf, ruleOrigin("nsswitch", "tells glibc's NSS to use these files and DNS", ""))
}

// addFixed adds a generated file unless one is given, and says so when it kept the given one.
func addFixed(v View, file, content string, o Origin) ([]string, error) {
	added, err := v.AddData(file, []byte(content), 0o644, o)
	if err != nil || added {
		return nil, err
	}
	return []string{file + ": kept the one given"}, nil
}
