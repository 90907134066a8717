//go:build !(linux && amd64)

package trace

import (
	"context"
	"errors"
	"fmt"
	"runtime"
)

func traceCommand(ctx context.Context, spec procSpec, cfg config) ([]Access, int, error) {
	return nil, -1, fmt.Errorf("tracing %q on %s/%s: only linux/amd64 is supported: %w",
		spec.path, runtime.GOOS, runtime.GOARCH, errors.ErrUnsupported)
}
