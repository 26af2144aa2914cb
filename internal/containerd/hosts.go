package containerd

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// hostsMarker starts every hosts.toml svcnet writes: only such files are
// removed when their registry is no longer insecure (others are the admin's).
const hostsMarker = "# Written by svcnet"

// ValidRegistry checks that r is a registry host:port that can name a
// directory under certs.d and a TOML string.
func ValidRegistry(r string) error {
	host, port, err := net.SplitHostPort(r)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", r, err)
	}
	if host == "" {
		return fmt.Errorf("%q has no host", r)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 1 to 65535", r, port)
	}
	if strings.ContainsAny(host, "/\\\"' \t\n@?#") {
		return fmt.Errorf("%q: host %q has a character a registry host cannot have", r, host)
	}
	return nil
}

// RenderHosts is the hosts.toml for insecure registry r (host:port) in the
// format of containerd's registry config_path (docs/hosts.md): the [host]
// entries are tried in order before server, so a pull tries plain HTTP first,
// then HTTPS without verifying the certificate.
func RenderHosts(r string) (string, error) {
	if err := ValidRegistry(r); err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s is an insecure registry (--insecure-registry; do not edit).\n", hostsMarker, r)
	fmt.Fprintf(&b, "server = \"http://%s\"\n", r)
	fmt.Fprintf(&b, "\n[host.\"http://%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n", r)
	fmt.Fprintf(&b, "\n[host.\"https://%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n  skip_verify = true\n", r)
	return b.String(), nil
}

// WriteHosts writes <certsDir>/<host:port>/hosts.toml for each registry and
// removes the ones svcnet wrote for registries no longer listed.
func WriteHosts(certsDir string, registries []string) error {
	want := map[string]string{}
	for _, r := range registries {
		text, err := RenderHosts(r)
		if err != nil {
			return fmt.Errorf("insecure registry: %w", err)
		}
		want[r] = text
	}
	if err := os.MkdirAll(certsDir, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(certsDir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if _, keep := want[e.Name()]; keep || !e.IsDir() {
			continue
		}
		dir := filepath.Join(certsDir, e.Name())
		if data, err := os.ReadFile(filepath.Join(dir, "hosts.toml")); err != nil || !bytes.HasPrefix(data, []byte(hostsMarker)) {
			continue // not ours
		}
		errs = append(errs, os.RemoveAll(dir))
	}
	names := make([]string, 0, len(want))
	for r := range want {
		names = append(names, r)
	}
	slices.Sort(names)
	for _, r := range names {
		dir := filepath.Join(certsDir, r)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, os.WriteFile(filepath.Join(dir, "hosts.toml"), []byte(want[r]), 0o600))
	}
	return errors.Join(errs...)
}
