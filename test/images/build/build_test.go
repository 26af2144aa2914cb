package main

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestImageTable(t *testing.T) {
	want := map[string][]string{
		"pause.tar":   {"registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.6"},
		"busybox.tar": {"docker.io/library/busybox:latest"},
		"agnhost.tar": {"registry.k8s.io/e2e-test-images/agnhost:2.56"},
		"httpd.tar":   {"docker.io/library/httpd:latest", "docker.io/library/httpd:2.4"},
		"nginx.tar":   {"docker.io/library/nginx:latest", "docker.io/library/nginx:1.17.1"},
	}
	got := map[string][]string{}
	for _, img := range selectImages(false, false, "") {
		got[img.file] = img.tags
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("images and tags = %v, want %v", got, want)
	}
	for _, img := range images {
		for _, tag := range img.tags {
			if _, err := name.NewTag(tag, name.StrictValidation); err != nil {
				t.Errorf("%s: tag %q: %v", img.file, tag, err)
			}
		}
		if len(img.config.Entrypoint)+len(img.config.Cmd) == 0 {
			t.Errorf("%s: neither Entrypoint nor Cmd", img.file)
		}
		if len(img.packages) > 0 && !slices.Contains(img.files, "base") {
			t.Errorf("%s: Debian image without the base files (passwd, group)", img.file)
		}
		seen := map[string]bool{}
		for _, e := range img.extra {
			if e.hardlink != "" && !seen[e.hardlink] {
				t.Errorf("%s: hard link %s to %s, which is not an earlier entry", img.file, e.path, e.hardlink)
			}
			seen[e.path] = true
		}
		if _, err := embeddedFiles(embedded, img.files); err != nil {
			t.Errorf("%s: %v", img.file, err)
		}
	}
}

// The conformance images carry the names Kubernetes' v1.34 e2e suite runs, and -only still
// selects among them.
func TestConformanceImages(t *testing.T) {
	want := map[string][]string{
		"pause.tar":           {"registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.6", "registry.k8s.io/pause:3.10.1"},
		"busybox.tar":         {"docker.io/library/busybox:latest", "registry.k8s.io/e2e-test-images/busybox:1.37.0-1"},
		"agnhost.tar":         {"registry.k8s.io/e2e-test-images/agnhost:2.56"},
		"httpd.tar":           {"docker.io/library/httpd:latest", "docker.io/library/httpd:2.4", "registry.k8s.io/e2e-test-images/httpd:2.4.38-4", "registry.k8s.io/e2e-test-images/httpd:2.4.39-4"},
		"nginx.tar":           {"docker.io/library/nginx:latest", "docker.io/library/nginx:1.17.1", "registry.k8s.io/e2e-test-images/nginx:1.14-4", "registry.k8s.io/e2e-test-images/nginx:1.15-4"},
		"jessie-dnsutils.tar": {"registry.k8s.io/e2e-test-images/jessie-dnsutils:1.7"},
	}
	got := map[string][]string{}
	for _, img := range selectImages(true, false, "") {
		got[img.file] = img.tags
		if img.conformanceTags != nil {
			t.Errorf("%s: conformance tags left in the selected entry", img.file)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("conformance images and tags = %v, want %v", got, want)
	}
	if len(images[0].tags) != 2 {
		t.Errorf("selectImages changed the table: pause tags %v", images[0].tags)
	}
	var files []string
	for _, img := range selectImages(true, false, "busybox.tar,jessie-dnsutils.tar") {
		files = append(files, img.file)
	}
	if !reflect.DeepEqual(files, []string{"busybox.tar", "jessie-dnsutils.tar"}) {
		t.Errorf("-only with -conformance selects %v", files)
	}
	if n := len(selectImages(false, false, "jessie-dnsutils.tar")); n != 0 {
		t.Errorf("jessie-dnsutils.tar selected without -conformance (%d images)", n)
	}
}

// -gateway selects only the Gateway API conformance suite's images, under the names its
// base manifests (v1.5.0) run.
func TestGatewayImages(t *testing.T) {
	want := map[string][]string{
		"echo-basic.tar": {"gcr.io/k8s-staging-gateway-api/echo-basic:v20260204-monthly-2026.01-60-g28382302"},
		"coredns.tar":    {"registry.k8s.io/coredns/coredns:v1.12.2"},
	}
	got := map[string][]string{}
	for _, img := range selectImages(false, true, "") {
		got[img.file] = img.tags
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("gateway images and tags = %v, want %v", got, want)
	}
}

func TestEmbeddedFiles(t *testing.T) {
	files, err := embeddedFiles(embedded, []string{"base", "httpd"})
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]entry{}
	for _, e := range files {
		byPath[e.path] = e
	}
	if e := byPath["usr/local/apache2/htdocs/index.html"]; string(e.data) != "<html><body><h1>It works!</h1></body></html>\n" {
		t.Errorf("index.html = %q", e.data)
	}
	if e := byPath["usr/local/bin/httpd-foreground"]; e.mode != 0o755 {
		t.Errorf("httpd-foreground mode = %v, want executable", e.mode)
	}
	if e := byPath["etc/passwd"]; !strings.HasPrefix(string(e.data), "root:x:0:0:") {
		t.Errorf("etc/passwd = %q", e.data)
	}
}

func TestCacheKey(t *testing.T) {
	img := images[2] // agnhost: packages and a local binary
	files, _ := embeddedFiles(embedded, img.files)
	versions := []string{"curl=7.88.1-10+deb12u14", "libc6=2.36-9+deb12u13"}
	bins := map[string]string{binSvcnet: "aaaa"}
	base := cacheKey(img, files, versions, bins)
	if base != cacheKey(img, files, versions, bins) {
		t.Fatal("same inputs give different keys")
	}
	changed := img
	changed.config.Cmd = []string{"netexec"}
	for name, key := range map[string]string{
		"package version": cacheKey(img, files, []string{"curl=7.88.1-10+deb12u15", "libc6=2.36-9+deb12u13"}, bins),
		"binary":          cacheKey(img, files, versions, map[string]string{binSvcnet: "bbbb"}),
		"config":          cacheKey(changed, files, versions, bins),
		"files":           cacheKey(img, files[1:], versions, bins),
	} {
		if key == base {
			t.Errorf("changing the %s keeps the key", name)
		}
	}
}

func TestParseApt(t *testing.T) {
	deps := "curl\n  Depends: libc6\n  Depends: libcurl4\n |Depends: <perl:any>\nlibc6\n  Depends: libgcc-s1\n<perl:any>\nlibcurl4\nlibc6\n"
	if got, want := parseDepends(deps), []string{"curl", "libc6", "libcurl4"}; !reflect.DeepEqual(got, want) {
		t.Errorf("parseDepends = %v, want %v", got, want)
	}
	policy := "curl:\n  Installed: (none)\n  Candidate: 7.88.1-10+deb12u14\n  Version table:\n     7.88.1-10+deb12u14 500\nlibc6:\n  Installed: 2.36-9\n  Candidate: 2.36-9+deb12u13\nold:\n  Installed: (none)\n  Candidate: (none)\n"
	versions := parsePolicy(policy)
	if got, want := versions, map[string]string{"curl": "7.88.1-10+deb12u14", "libc6": "2.36-9+deb12u13", "old": "(none)"}; !reflect.DeepEqual(got, want) {
		t.Errorf("parsePolicy = %v, want %v", got, want)
	}
	got, err := pinned([]string{"curl", "libc6", "old"}, []string{"curl"}, versions)
	if want := []string{"curl=7.88.1-10+deb12u14", "libc6=2.36-9+deb12u13"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("pinned = %v, %v, want %v", got, err, want)
	}
	if _, err := pinned([]string{"old"}, []string{"old"}, versions); err == nil {
		t.Error("pinned: a requested package without a candidate is no error")
	}
}

// readTar lists a gzip-compressed layer file's headers by name.
func readTar(t *testing.T, file string) map[string]*tar.Header {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	out := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = h
	}
}

func TestLayerFromDir(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"bin", "usr/share/doc/curl", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	must(t, os.WriteFile(filepath.Join(root, "bin/tool"), []byte("#!/bin/sh\n"), 0o755))
	must(t, os.Link(filepath.Join(root, "bin/tool"), filepath.Join(root, "bin/tool2")))
	must(t, os.Symlink("tool", filepath.Join(root, "bin/alias")))
	must(t, os.WriteFile(filepath.Join(root, "usr/share/doc/curl/copyright"), []byte("x"), 0o644))
	must(t, os.Chmod(filepath.Join(root, "tmp"), fs.ModeSticky|0o777))

	entries, err := walkRootfs(root, dropPaths)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "layer.tar.gz")
	must(t, writeLayerFile(file, entries))
	h := readTar(t, file)
	var names []string
	for n := range h {
		names = append(names, n)
	}
	slices.Sort(names)
	if want := []string{"bin/", "bin/alias", "bin/tool", "bin/tool2", "tmp/", "usr/", "usr/share/"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("layer = %v, want %v", names, want)
	}
	if x := h["bin/tool"]; x.Typeflag != tar.TypeReg || x.Size != 10 || x.Mode != 0o755 || !x.ModTime.Equal(epoch) {
		t.Errorf("bin/tool = %+v", x)
	}
	if x := h["bin/tool2"]; x.Typeflag != tar.TypeLink || x.Linkname != "bin/tool" {
		t.Errorf("bin/tool2 = %+v, want a hard link to bin/tool", x)
	}
	if x := h["bin/alias"]; x.Typeflag != tar.TypeSymlink || x.Linkname != "tool" {
		t.Errorf("bin/alias = %+v", x)
	}
	if x := h["tmp/"]; x.Mode != 0o1777 {
		t.Errorf("tmp mode = %o, want 1777", x.Mode)
	}
}

func TestTopLayer(t *testing.T) {
	lower := map[string]bool{"usr": true, "usr/bin": true, "bin": true, "bin/sh": true, "usr/bin/nslookup": true}
	files := []entry{{path: "etc/passwd", mode: 0o644, data: []byte("root")}}
	extra := []entry{binary("agnhost", binSvcnet), hardlink("usr/local/bin/svcnet", "agnhost"), {path: "etc/passwd", mode: 0o600, data: []byte("x")}}
	out := topLayer(files, extra, []byte("CERT\n"), []string{"bin/sh", "usr/bin/nslookup", "usr/bin/wget", "linuxrc", "bin/busybox"}, lower)
	var got []string
	for _, e := range out {
		got = append(got, e.path)
	}
	want := []string{"etc", "etc/passwd", "agnhost", "usr/local", "usr/local/bin", "usr/local/bin/svcnet", "etc/ssl", "etc/ssl/certs", "etc/ssl/certs/ca-certificates.crt", "usr/bin/wget"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("top layer = %v, want %v", got, want)
	}
	if out[1].mode != 0o600 {
		t.Errorf("etc/passwd: a later entry does not replace the earlier one")
	}
	if w := out[len(out)-1]; w.link != "/bin/busybox" {
		t.Errorf("usr/bin/wget links to %q", w.link)
	}
}

func TestWriteImage(t *testing.T) {
	dir := t.TempDir()
	layer := filepath.Join(dir, "layer.tar.gz")
	must(t, writeLayerFile(layer, []entry{{path: "pause", mode: 0o755, data: []byte("binary")}}))
	l, err := tarball.LayerFromFile(layer)
	if err != nil {
		t.Fatal(err)
	}
	img := images[0]
	out := filepath.Join(dir, img.file)
	must(t, writeImage(out, img, []mutate.Addendum{{Layer: l}}))
	for _, tag := range img.tags {
		ref, _ := name.NewTag(tag)
		read, err := tarball.ImageFromPath(out, &ref)
		if err != nil {
			t.Fatalf("%s: %v", tag, err)
		}
		cf, err := read.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.Architecture != "amd64" || cf.OS != "linux" || !reflect.DeepEqual(cf.Config.Entrypoint, []string{"/pause"}) || cf.Config.User != "65535:65535" {
			t.Errorf("%s config = %+v", tag, cf)
		}
		if ls, _ := read.Layers(); len(ls) != 1 {
			t.Errorf("%s: %d layers, want 1", tag, len(ls))
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
