// Package grypedb builds a small grype v6 vulnerability database with grype's own writer, for
// bench/scanners.sh: the real database cannot be downloaded here. It is a module of its own so that grype's
// dependencies stay out of scratchpack's go.mod. Run: GRYPEDB_OUT=DIR go test ./... (from this directory).
package grypedb

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/afero"

	v6 "github.com/anchore/grype/grype/db/v6"
	"github.com/anchore/grype/grype/db/v6/testdb"
)

// record is a vunnel "os" result in Debian 12's namespace: the structure of the Debian security tracker's
// record of CVE-2024-0727 (openssl), with a fixed version above the one installed, so that the installed
// libssl3 is affected. It is a test record, not the tracker's data.
const record = `{
  "identifier": "debian:12/cve-2024-0727",
  "item": {
    "Vulnerability": {
      "CVSS": [],
      "Description": "test record for scratchpack's scanner bench (OpenSSL PKCS12 NULL dereference)",
      "FixedIn": [{"Name": "openssl", "NamespaceName": "debian:12", "VendorAdvisory": {"AdvisorySummary": [], "NoAdvisory": false},
        "Version": "3.0.99-1~deb12u1", "VersionFormat": "dpkg"}],
      "Link": "https://security-tracker.debian.org/tracker/CVE-2024-0727",
      "Metadata": {},
      "Name": "CVE-2024-0727",
      "NamespaceName": "debian:12",
      "Severity": "Medium"
    }
  },
  "schema": "https://raw.githubusercontent.com/anchore/vunnel/main/schema/vulnerability/os/schema-1.1.0.json"
}`

func TestBuildDB(t *testing.T) {
	out := os.Getenv("GRYPEDB_OUT")
	if out == "" {
		t.Skip("GRYPEDB_OUT is not set")
	}
	in := t.TempDir()
	results := filepath.Join(in, "debian", "results", "debian@12")
	if err := os.MkdirAll(results, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(results, "cve-2024-0727.json"), []byte(record), 0o644); err != nil {
		t.Fatal(err)
	}
	dbDir := filepath.Join(out, "6")
	if err := os.MkdirAll(dbDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// With a file pattern it always builds (without one it skips when its output looks up to date).
	testdb.BuildFromFlatFileDir(t, time.Now().UTC().Truncate(time.Second), dbDir, in, "**/*.json")
	if _, err := v6.WriteImportMetadata(afero.NewOsFs(), dbDir, "scratchpack bench"); err != nil {
		t.Fatal(err)
	}
}
