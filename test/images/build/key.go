package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// builderVersion changes whenever the builder writes different images from the same inputs;
// it is part of every cache key.
const builderVersion = "1"

// cacheKey is the hash of everything an image is made from: the builder version, the image's
// table entry and files, its Debian packages' versions ("name=version") and the sha256 of
// each local binary it takes.
func cacheKey(img image, files []entry, versions []string, bins map[string]string) string {
	type ent struct {
		Path, Link, Hardlink, Bin, BinHash string
		Mode                               uint32
		UID, GID                           int
		Data                               []byte
	}
	var ents []ent
	for _, e := range append(append([]entry(nil), files...), img.extra...) {
		ents = append(ents, ent{e.path, e.link, e.hardlink, e.bin, bins[e.bin], uint32(e.mode), e.uid, e.gid, e.data})
	}
	b, _ := json.Marshal(struct {
		Builder, File        string
		Tags, Packages, Drop []string
		DropAll              []string
		Busybox              bool
		Entries              []ent
		Config               any
		Versions             []string
	}{builderVersion, img.file, img.tags, img.packages, img.drop, dropPaths, img.busybox, ents, img.config, versions})
	return hashBytes(b)
}

// rootfsKey names the root filesystem built from packages at these versions.
func rootfsKey(packages, versions []string) string {
	return hashBytes([]byte(builderVersion + "\n" + strings.Join(packages, ",") + "\n" + strings.Join(versions, "\n")))
}

func hashBytes(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// hashFile is the sha256 of a file's content.
func hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// parseDepends lists the real packages in `apt-cache depends --recurse` output: the
// unindented lines, without virtual packages ("<perl:any>").
func parseDepends(out string) []string {
	seen := map[string]bool{}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		if line == "" || line[0] == ' ' || line[0] == '<' || seen[line] {
			continue
		}
		seen[line] = true
		names = append(names, line)
	}
	sort.Strings(names)
	return names
}

// parsePolicy maps each package in `apt-cache policy` output to its candidate version.
func parsePolicy(out string) map[string]string {
	versions := map[string]string{}
	name := ""
	for _, line := range strings.Split(out, "\n") {
		switch {
		case line != "" && line[0] != ' ' && strings.HasSuffix(line, ":"):
			name = strings.TrimSuffix(line, ":")
		case name != "" && strings.HasPrefix(strings.TrimSpace(line), "Candidate:"):
			versions[name] = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "Candidate:"))
			name = ""
		}
	}
	return versions
}

// pinned lists names with their candidate versions as "name=version", leaving out names
// without a candidate (alternatives apt would not pick); a requested package without one is
// an error, since the image could not be built.
func pinned(names, requested []string, versions map[string]string) ([]string, error) {
	for _, n := range requested {
		if v := versions[n]; v == "" || v == "(none)" {
			return nil, fmt.Errorf("package %s has no installable version (apt-get update?)", n)
		}
	}
	var out []string
	for _, n := range names {
		if v := versions[n]; v != "" && v != "(none)" {
			out = append(out, n+"="+v)
		}
	}
	return out, nil
}
