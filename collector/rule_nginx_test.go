package collector

import (
	"slices"
	"strings"
	"testing"
)

func TestNginxDirectives(t *testing.T) {
	conf := `user www-data;  # the workers' user
include /etc/nginx/modules-enabled/*.conf;
http {
	include mime.types;
	log_format main '$remote_addr "$request"' ;
	server { listen 80; root "/srv/my site"; location / { alias /srv/a\;b; } }
}
`
	var got []string
	for _, d := range nginxDirectives(conf) {
		got = append(got, strings.Join(d, "|"))
	}
	want := []string{"user|www-data", "include|/etc/nginx/modules-enabled/*.conf", "http", "include|mime.types",
		`log_format|main|$remote_addr "$request"`, "server", "listen|80", "root|/srv/my site", "location|/", "alias|/srv/a;b"}
	if !slices.Equal(got, want) {
		t.Errorf("directives:\n got %q\nwant %q", got, want)
	}
}
