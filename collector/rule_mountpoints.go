package collector

// mountpointsRule makes the empty directories a container runtime mounts over.
type mountpointsRule struct{}

func (mountpointsRule) Name() string { return "mountpoints" }

func (mountpointsRule) Summary() string {
	return "empty /dev, /proc and /sys, where the container runtime (or a chroot's mount) puts its file systems"
}

func (mountpointsRule) Apply(v View, _ RuleOptions) ([]string, error) {
	for _, d := range []string{"/dev", "/proc", "/sys"} {
		if _, ok := v.Entry(d); ok {
			continue
		}
		if err := v.AddDir(d, 0o755, 0, 0, ruleOrigin("mountpoints", "a mount point for the runtime", "")); err != nil {
			return nil, err
		}
	}
	return nil, nil
}
