package registry

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestCredentialHelpersOptIn: with a Docker config naming a credsStore, nothing is run unless credential
// helpers are allowed; the config's own auths are still sent (issue 9 #12).
func TestCredentialHelpersOptIn(t *testing.T) {
	var mu sync.Mutex
	var auths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auths = append(auths, r.Header.Get("Authorization"))
		mu.Unlock()
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNotFound)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	dir := t.TempDir()
	marker := filepath.Join(dir, "helper-ran")
	helper := filepath.Join(dir, "bin", "docker-credential-evil")
	if err := os.MkdirAll(filepath.Dir(helper), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(helper, []byte("#!/bin/sh\ntouch "+marker+"\necho '{\"Username\":\"helper\",\"Secret\":\"s\"}'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := `{"credsStore": "evil", "auths": {"` + host + `": {"auth": "` + base64.StdEncoding.EncodeToString([]byte("user:pass")) + `"}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
	t.Setenv("PATH", filepath.Dir(helper)+":"+os.Getenv("PATH"))

	for _, helpers := range []bool{false, true} {
		os.Remove(marker)
		auths = nil
		r, opts, err := Ref(context.Background(), host+"/x:1", false, WithCredentialHelpers(helpers))
		if err != nil {
			t.Fatal(err)
		}
		remote.Get(r, opts...) // 404 in the end: what matters is what was sent and run
		_, err = os.Stat(marker)
		if ran := err == nil; ran != helpers {
			t.Errorf("helpers %v: the credential helper ran: %v", helpers, ran)
		}
		want := "Basic " + base64.StdEncoding.EncodeToString([]byte("user:pass"))
		if helpers {
			want = "Basic " + base64.StdEncoding.EncodeToString([]byte("helper:s"))
		}
		mu.Lock()
		sent := strings.Join(auths, " | ")
		mu.Unlock()
		if !strings.Contains(sent, want) {
			t.Errorf("helpers %v: sent %q, want %q", helpers, sent, want)
		}
	}
}
