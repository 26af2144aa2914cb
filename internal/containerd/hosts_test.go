package containerd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRenderHosts(t *testing.T) {
	for _, tc := range []struct {
		registry, want, err string
	}{
		{registry: "127.0.0.1:5000", want: `# Written by svcnet: 127.0.0.1:5000 is an insecure registry (--insecure-registry; do not edit).
server = "http://127.0.0.1:5000"

[host."http://127.0.0.1:5000"]
  capabilities = ["pull", "resolve"]

[host."https://127.0.0.1:5000"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
`},
		{registry: "registry.lan:443", want: `# Written by svcnet: registry.lan:443 is an insecure registry (--insecure-registry; do not edit).
server = "http://registry.lan:443"

[host."http://registry.lan:443"]
  capabilities = ["pull", "resolve"]

[host."https://registry.lan:443"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
`},
		{registry: "[fd00::1]:5000", want: `# Written by svcnet: [fd00::1]:5000 is an insecure registry (--insecure-registry; do not edit).
server = "http://[fd00::1]:5000"

[host."http://[fd00::1]:5000"]
  capabilities = ["pull", "resolve"]

[host."https://[fd00::1]:5000"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
`},
		{registry: "registry.lan", err: "not host:port"},
		{registry: ":5000", err: "no host"},
		{registry: "registry.lan:http", err: "port"},
		{registry: "registry.lan:70000", err: "port"},
		{registry: `a"b:5000`, err: "character"},
		{registry: "a/b:5000", err: "character"},
	} {
		got, err := RenderHosts(tc.registry)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err = %v, want one with %q", tc.registry, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.registry, err)
		} else if got != tc.want {
			t.Errorf("%s: got\n%s\nwant\n%s", tc.registry, got, tc.want)
		}
	}
}

func TestWriteHosts(t *testing.T) {
	certs := filepath.Join(t.TempDir(), "certs.d")
	if err := WriteHosts(certs, []string{"127.0.0.1:5000", "10.0.0.1:5001"}); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(certs, "mirror.lan:443")
	if err := os.MkdirAll(foreign, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(foreign, "hosts.toml"), []byte("server = \"https://mirror.lan\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteHosts(certs, []string{"127.0.0.1:5000"}); err != nil {
		t.Fatal(err)
	}
	for dir, want := range map[string]bool{"127.0.0.1:5000": true, "10.0.0.1:5001": false, "mirror.lan:443": true} {
		_, err := os.Stat(filepath.Join(certs, dir, "hosts.toml"))
		if (err == nil) != want {
			t.Errorf("%s/hosts.toml present = %v, want %v", dir, err == nil, want)
		}
	}
	data, err := os.ReadFile(filepath.Join(certs, "127.0.0.1:5000", "hosts.toml"))
	if want, _ := RenderHosts("127.0.0.1:5000"); err != nil || string(data) != want {
		t.Errorf("127.0.0.1:5000/hosts.toml = %q, %v", data, err)
	}
	if err := WriteHosts(certs, []string{"nope"}); err == nil || !strings.Contains(err.Error(), "insecure registry") {
		t.Errorf("a bad registry must be refused, got %v", err)
	}
	if _, err := os.Stat(filepath.Join(certs, "127.0.0.1:5000")); err != nil {
		t.Errorf("a refused list must leave the files as they were: %v", err)
	}
}
