package registry

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestIsLoopback(t *testing.T) {
	for _, tc := range []struct {
		registry string
		want     bool
	}{
		{"localhost", true},
		{"localhost:5000", true},
		{"127.0.0.1:5000", true},
		{"127.1.2.3", true},
		{"[::1]:5000", true},
		{"::1", true},
		{"10.0.0.1:5000", false},
		{"registry.localhost:5000", false},
		{"index.docker.io", false},
		{"192.0.2.2:80", false},
	} {
		t.Run(tc.registry, func(t *testing.T) {
			if got := IsLoopback(tc.registry); got != tc.want {
				t.Errorf("IsLoopback(%q) = %v, want %v", tc.registry, got, tc.want)
			}
		})
	}
}

func TestRef(t *testing.T) {
	for _, tc := range []struct {
		ref        string
		insecure   bool
		wantScheme string
		wantErr    string
	}{
		{ref: "localhost:5000/app:1", wantScheme: "http"},
		{ref: "127.0.0.1:5000/app@sha256:" + strings.Repeat("a", 64), wantScheme: "http"},
		{ref: "registry.example/app:1", wantScheme: "https"},
		{ref: "registry.example/app:1", insecure: true, wantScheme: "http"},
		{ref: "Not A Reference", wantErr: `image reference "Not A Reference"`},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			r, opts, err := Ref(context.Background(), tc.ref, tc.insecure)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Ref: %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Context().Registry.Scheme(); got != tc.wantScheme {
				t.Errorf("scheme %s, want %s", got, tc.wantScheme)
			}
			if len(opts) == 0 {
				t.Error("no remote options")
			}
		})
	}
}

// TestRefLoopbackRegistry pulls from a plain-HTTP registry of this machine, without insecure.
func TestRefLoopbackRegistry(t *testing.T) {
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/app:1"
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	r, opts, err := Ref(context.Background(), ref, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, opts...); err != nil {
		t.Fatal(err)
	}
	got, err := remote.Image(r, opts...)
	if err != nil {
		t.Fatal(err)
	}
	gd, _ := got.Digest()
	wd, _ := img.Digest()
	if gd != wd {
		t.Errorf("pulled %s, want %s", gd, wd)
	}
}

func TestHTTPSOnly(t *testing.T) {
	for _, tc := range []struct {
		url          string
		loopbackHTTP bool // the registry itself is a loopback one
		allowed      bool
	}{
		{"https://registry.example/v2/", false, true},
		{"http://10.0.0.1:5000/v2/", false, false},
		{"http://registry.localhost/v2/", false, false},
		{"http://registry.example/token?scope=x", false, false},
		{"http://127.0.0.1:5000/v2/", false, false},
		// A loopback registry over plain HTTP: itself yes, but not a token realm or a redirect elsewhere.
		{"http://127.0.0.1:5000/v2/", true, true},
		{"http://[::1]:5000/v2/x/blobs/uploads/", true, true},
		{"http://registry.example/token?scope=x", true, false},
		{"http://10.0.0.1/blobs/sha256:abc", true, false},
		{"https://registry.example/token?scope=x", true, true},
	} {
		t.Run(fmt.Sprintf("%s loopback=%v", tc.url, tc.loopbackHTTP), func(t *testing.T) {
			sent := false
			h := httpsOnly{next: roundTripFunc(func(*http.Request) (*http.Response, error) {
				sent = true
				return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}, nil
			}), loopbackHTTP: tc.loopbackHTTP}
			req, err := http.NewRequest(http.MethodGet, tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = h.RoundTrip(req)
			if (err == nil) != tc.allowed || sent != tc.allowed {
				t.Errorf("RoundTrip: %v (sent: %v), want allowed %v", err, sent, tc.allowed)
			}
			if !tc.allowed && (err == nil || !strings.Contains(err.Error(), "not HTTPS")) {
				t.Errorf("RoundTrip: %v, want it to say why", err)
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestTimeouts: a registry that accepts and never answers, or answers a byte at a time forever, fails a
// pull within the timeouts, naming the request (issue 9 #7).
func TestTimeouts(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		opts    []Option
	}{
		{"never answers", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-stop:
			case <-r.Context().Done():
			}
		}, []Option{WithIdleTimeout(300 * time.Millisecond), WithRequestTimeout(time.Minute)}},
		{"trickles", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			for {
				if _, err := w.Write([]byte(" ")); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-stop:
					return
				case <-r.Context().Done():
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		}, []Option{WithIdleTimeout(time.Minute), WithRequestTimeout(700 * time.Millisecond)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			host := strings.TrimPrefix(srv.URL, "http://")
			r, ropts, err := Ref(context.Background(), host+"/x:1", false, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err = remote.Get(r, ropts...)
			if err == nil {
				t.Fatal("the pull succeeded")
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("it took %v to give up", d)
			}
			if !strings.Contains(err.Error(), host) {
				t.Errorf("error %v does not name the request", err)
			}
		})
	}
}
