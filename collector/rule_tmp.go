package collector

// tmpRule makes /tmp, world-writable and sticky.
type tmpRule struct{}

func (tmpRule) Name() string { return "tmp" }

func (tmpRule) Summary() string { return "/tmp with mode 1777" }

func (tmpRule) Apply(v View, _ RuleOptions) ([]string, error) {
	return nil, v.AddDir("/tmp", 0o1777, 0, 0, ruleOrigin("tmp", "scratch space (mode 1777)", ""))
}
