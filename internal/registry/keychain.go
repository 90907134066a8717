package registry

import (
	"os"
	"path/filepath"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// keychain reads registry credentials from the Docker config (as docker, crane and go-containerregistry's
// DefaultKeychain find it: $DOCKER_CONFIG or ~/.docker/config.json, else $REGISTRY_AUTH_FILE or podman's
// containers/auth.json). Unless helpers, the config's credsStore and credHelpers are ignored: using them
// runs a docker-credential-NAME program, and scratchpack runs nothing unless asked to.
type keychain struct{ helpers bool }

func (k keychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	cf, err := loadConfig()
	if err != nil || cf == nil {
		return authn.Anonymous, err
	}
	if !k.helpers {
		cf.CredentialsStore, cf.CredentialHelpers = "", nil
	}
	var cfg, empty types.AuthConfig
	for _, key := range []string{target.String(), target.RegistryStr()} {
		if key == name.DefaultRegistry {
			key = authn.DefaultAuthKey
		}
		if cfg, err = cf.GetAuthConfig(key); err != nil {
			return nil, err
		}
		cfg.ServerAddress = "" // GetAuthConfig fills it in; it says nothing of credentials
		if cfg != empty {
			break
		}
	}
	if cfg == empty {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(authn.AuthConfig{Username: cfg.Username, Password: cfg.Password, Auth: cfg.Auth,
		IdentityToken: cfg.IdentityToken, RegistryToken: cfg.RegistryToken}), nil
}

// loadConfig finds and reads the credentials file, or returns nil when there is none.
func loadConfig() (*configfile.ConfigFile, error) {
	home, _ := os.UserHomeDir()
	if dir := os.Getenv("DOCKER_CONFIG"); dir != "" && isFile(filepath.Join(dir, "config.json")) ||
		home != "" && isFile(filepath.Join(home, ".docker", "config.json")) {
		return config.Load(os.Getenv("DOCKER_CONFIG"))
	}
	var candidates []string
	if p := os.Getenv("REGISTRY_AUTH_FILE"); p != "" {
		candidates = append(candidates, p)
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		candidates = append(candidates, filepath.Join(d, "containers", "auth.json"))
	}
	if home != "" {
		candidates = append(candidates, filepath.Join(home, ".config", "containers", "auth.json"))
	}
	for _, p := range candidates {
		if !isFile(p) {
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return config.LoadFromReader(f)
	}
	return nil, nil
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
