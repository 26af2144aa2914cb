package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// aptDepends are the apt-cache flags that follow only the hard dependencies, as
// mmdebstrap's package set does.
var aptDepends = []string{"depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances"}

// resolve lists packages and their hard dependencies as "name=version", from the host's
// apt package lists.
func resolve(ctx context.Context, packages []string) ([]string, error) {
	out, err := run(ctx, "apt-cache", append(append([]string(nil), aptDepends...), packages...)...)
	if err != nil {
		return nil, err
	}
	names := parseDepends(out)
	pol, err := run(ctx, "apt-cache", append([]string{"policy"}, names...)...)
	if err != nil {
		return nil, err
	}
	return pinned(names, packages, parsePolicy(pol))
}

// buildRootfs extracts packages and their dependencies into dst with mmdebstrap (no
// maintainer scripts run) from the given apt sources files, then writes its ld.so.cache.
// mmdebstrap's output goes to dst.log.
func buildRootfs(ctx context.Context, dst, suite string, sources, packages []string) error {
	tmp := dst + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	args := append([]string{"--variant=extract", "--include=" + strings.Join(packages, ","), suite, tmp}, sources...)
	logFile := dst + ".log"
	log, err := os.Create(logFile)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.CommandContext(ctx, "mmdebstrap", args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		tail, _ := os.ReadFile(logFile)
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		return fmt.Errorf("mmdebstrap %s: %w\n%s", strings.Join(args, " "), err, tail)
	}
	if _, err := run(ctx, "ldconfig", "-r", tmp); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// applets lists the busybox applets with their full paths ("bin/sh", "usr/bin/wget").
func applets(ctx context.Context, root string) ([]string, error) {
	out, err := run(ctx, filepath.Join(root, "bin/busybox"), "--list-full")
	if err != nil {
		return nil, err
	}
	return strings.Fields(out), nil
}

// removeStale deletes the cached root filesystems of an image other than keep.
func removeStale(dir, prefix, keep string) {
	old, _ := filepath.Glob(filepath.Join(dir, prefix+"*"))
	for _, o := range old {
		if o != keep && !strings.HasPrefix(o, keep+".") {
			os.RemoveAll(o)
		}
	}
}

func run(ctx context.Context, name string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
