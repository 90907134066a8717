package collector

import "context"

// DirSink writes the tree as a root filesystem directory (see WriteDir).
type DirSink struct {
	Path  string
	Force bool
}

func (s *DirSink) Check() error     { return CheckDest(s.Path, s.Force) }
func (s *DirSink) WantsImage() bool { return false }
func (s *DirSink) String() string   { return "dir:" + s.Path }

func (s *DirSink) Publish(ctx context.Context, a Artifact) (string, error) {
	return s.Path, WriteDir(ctx, a.Tree, s.Path, a.MTime, s.Force)
}

// TarSink writes the tree as one reproducible tarball (see WriteTar).
type TarSink struct {
	Path  string
	Force bool
}

func (s *TarSink) Check() error     { return CheckDest(s.Path, s.Force) }
func (s *TarSink) WantsImage() bool { return false }
func (s *TarSink) String() string   { return "tar:" + s.Path }

func (s *TarSink) Publish(ctx context.Context, a Artifact) (string, error) {
	return s.Path, WriteTarFile(ctx, a.Tree, s.Path, a.MTime, s.Force)
}

// CPIOSink writes the tree as a newc initramfs (see WriteCPIO).
type CPIOSink struct {
	Path  string
	Force bool
}

func (s *CPIOSink) Check() error     { return CheckDest(s.Path, s.Force) }
func (s *CPIOSink) WantsImage() bool { return false }
func (s *CPIOSink) String() string   { return "cpio:" + s.Path }

func (s *CPIOSink) Publish(ctx context.Context, a Artifact) (string, error) {
	return s.Path, WriteCPIOFile(ctx, a.Tree, s.Path, a.MTime, s.Force)
}
