package collector

import (
	"slices"
	"testing"
)

func TestCommandWords(t *testing.T) {
	for _, c := range []struct {
		line string
		want []string
	}{
		{"exec redis-server --port 6379", []string{"redis-server"}},
		{"FOO=1 BAR=2 nginx -g 'daemon off;'", []string{"nginx"}},
		{"cd /app && exec env -i python3 app.py | tee log; echo done", []string{"cd", "python3", "tee", "echo"}},
		{"nohup worker & wait # then cleanup", []string{"worker", "wait"}},
		{`sh -c "exec jq -n 1"`, []string{"sh"}},
		{"(subshell arg)", []string{"subshell"}},
	} {
		if got := commandWords(c.line); !slices.Equal(got, c.want) {
			t.Errorf("commandWords(%q) = %q, want %q", c.line, got, c.want)
		}
	}
}
