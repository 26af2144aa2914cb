// Command build writes the offline test images (pause, busybox, agnhost, httpd, nginx) as
// docker-archive tarballs that `ctr images import` loads under the real images' names. Root
// filesystems come from Debian packages (mmdebstrap) and local binaries; a tarball whose
// inputs did not change is kept. scripts/test-images.sh installs what it needs and runs it.
package main

import (
	"context"
	"embed"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

//go:embed files
var embedded embed.FS

// builder holds the inputs shared by every image.
type builder struct {
	out, cache string
	suite      string
	sources    []string          // apt sources files handed to mmdebstrap
	bins       map[string]string // local binary name -> host path
	binHash    map[string]string // local binary name -> sha256
	logf       func(format string, args ...any)
}

func main() {
	out := flag.String("out", "", "directory the tarballs are written to")
	cache := flag.String("cache", "/var/cache/svcnet-images", "directory for root filesystems and layers")
	suite := flag.String("suite", "bookworm", "Debian suite of the packages")
	sources := flag.String("sources", "", "comma-separated apt sources files for mmdebstrap")
	svcnet := flag.String("svcnet", "", "svcnet binary (agnhost image)")
	pause := flag.String("pause", "", "pause binary (pause image)")
	only := flag.String("only", "", "comma-separated tarball names to build (default all)")
	gateway := flag.Bool("gateway", false, "only the Gateway API conformance suite's images (echo-basic, coredns); needs -echo-basic")
	echoBasic := flag.String("echo-basic", "", "echo-basic binary (Gateway API conformance)")
	conformance := flag.Bool("conformance", false, "also the images and names Kubernetes' e2e conformance tests run (jessie-dnsutils, e2e-test-images tags)")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "usage: build -out DIR -svcnet BIN -pause BIN -sources FILES")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := &builder{
		out: *out, cache: *cache, suite: *suite,
		bins:    map[string]string{binSvcnet: *svcnet, binPause: *pause, binEchoBasic: *echoBasic},
		binHash: map[string]string{},
		logf:    func(format string, args ...any) { fmt.Printf("images: "+format+"\n", args...) },
	}
	if *sources != "" {
		b.sources = strings.Split(*sources, ",")
	}
	if err := b.run(ctx, selectImages(*conformance, *gateway, *only)); err != nil {
		fmt.Fprintln(os.Stderr, "images: error:", err)
		os.Exit(1)
	}
}

func (b *builder) run(ctx context.Context, images []image) error {
	for _, d := range []string{b.out, filepath.Join(b.cache, "rootfs"), filepath.Join(b.cache, "layers")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	for _, img := range images {
		if err := b.build(ctx, img); err != nil {
			return fmt.Errorf("%s: %w", img.file, err)
		}
	}
	return nil
}

// build writes one image's tarball unless the one there has the same cache key.
func (b *builder) build(ctx context.Context, img image) error {
	start := time.Now()
	files, err := embeddedFiles(embedded, img.files)
	if err != nil {
		return err
	}
	var versions []string
	if len(img.packages) > 0 {
		if versions, err = resolve(ctx, img.packages); err != nil {
			return err
		}
	}
	extra, err := b.withBinaries(img.extra)
	if err != nil {
		return err
	}
	key := cacheKey(img, files, versions, b.binHash)
	target := filepath.Join(b.out, img.file)
	keyFile := filepath.Join(b.out, "."+img.file+".key")
	if old, err := os.ReadFile(keyFile); err == nil && string(old) == key {
		if _, err := os.Stat(target); err == nil {
			b.logf("%s: up to date (key %s)", img.file, key[:12])
			return nil
		}
	}
	b.logf("%s: building %s (key %s)", img.file, strings.Join(img.tags, ", "), key[:12])

	var layers []mutate.Addendum
	var lower map[string]bool
	var bundle []byte
	var busybox []string
	if len(img.packages) > 0 {
		base := strings.TrimSuffix(img.file, ".tar")
		rkey := rootfsKey(img.packages, versions)
		root := filepath.Join(b.cache, "rootfs", base+"-"+rkey[:16])
		if _, err := os.Stat(root); err != nil {
			b.logf("%s: mmdebstrap %s (%d packages with dependencies)", img.file, strings.Join(img.packages, ","), len(versions))
			removeStale(filepath.Join(b.cache, "rootfs"), base+"-", root)
			if err := buildRootfs(ctx, root, b.suite, b.sources, img.packages); err != nil {
				return err
			}
		}
		entries, err := walkRootfs(root, append(append([]string(nil), dropPaths...), img.drop...))
		if err != nil {
			return err
		}
		lower = map[string]bool{}
		for _, e := range entries {
			lower[e.path] = true
		}
		lkey := hashBytes([]byte(rkey + strings.Join(dropPaths, ",") + strings.Join(img.drop, ",")))
		layerFile := filepath.Join(b.cache, "layers", base+"-"+lkey[:16]+".tar.gz")
		if _, err := os.Stat(layerFile); err != nil {
			b.logf("%s: packing %d files of the Debian root filesystem", img.file, len(entries))
			removeStale(filepath.Join(b.cache, "layers"), base+"-", layerFile)
			if err := writeLayerFile(layerFile, entries); err != nil {
				return err
			}
		}
		l, err := tarball.LayerFromFile(layerFile)
		if err != nil {
			return err
		}
		layers = append(layers, mutate.Addendum{Layer: l, History: v1.History{
			Created: v1.Time{Time: epoch}, CreatedBy: "mmdebstrap --variant=extract --include=" + strings.Join(img.packages, ","),
		}})
		if bundle, err = caBundle(root); err != nil {
			return err
		}
		if img.busybox {
			if busybox, err = applets(ctx, root); err != nil {
				return err
			}
		}
	}
	top := filepath.Join(b.out, "."+img.file+".top.tar.gz")
	defer os.Remove(top)
	if err := writeLayerFile(top, topLayer(files, extra, bundle, busybox, lower)); err != nil {
		return err
	}
	l, err := tarball.LayerFromFile(top)
	if err != nil {
		return err
	}
	layers = append(layers, mutate.Addendum{Layer: l, History: v1.History{
		Created: v1.Time{Time: epoch}, CreatedBy: "svcnet test/images: configuration, local binaries, applet links",
	}})
	if err := writeImage(target, img, layers); err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, []byte(key), 0o644); err != nil {
		return err
	}
	st, _ := os.Stat(target)
	b.logf("%s: wrote %.1f MiB in %s", img.file, float64(st.Size())/(1<<20), time.Since(start).Round(100*time.Millisecond))
	return nil
}

// withBinaries resolves the local binaries of entries to their host files, hashing each once.
func (b *builder) withBinaries(entries []entry) ([]entry, error) {
	out := append([]entry(nil), entries...)
	for i, e := range out {
		if e.bin == "" {
			continue
		}
		p := b.bins[e.bin]
		if p == "" {
			return nil, fmt.Errorf("no -%s binary given", e.bin)
		}
		if _, ok := b.binHash[e.bin]; !ok {
			h, err := hashFile(p)
			if err != nil {
				return nil, err
			}
			b.binHash[e.bin] = h
		}
		out[i].src = p
	}
	return out, nil
}

// writeImage writes the image, under all its tags, as a docker-archive tarball.
func writeImage(target string, img image, layers []mutate.Addendum) error {
	i, err := mutate.Append(empty.Image, layers...)
	if err != nil {
		return err
	}
	i, err = mutate.ConfigFile(i, imageConfig(img, mustConfig(i)))
	if err != nil {
		return err
	}
	refs := map[name.Reference]v1.Image{}
	for _, t := range img.tags {
		tag, err := name.NewTag(t, name.StrictValidation)
		if err != nil {
			return err
		}
		refs[tag] = i
	}
	tmp := target + ".tmp"
	if err := tarball.MultiRefWriteToFile(tmp, refs); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, target)
}

func mustConfig(i v1.Image) *v1.ConfigFile {
	cf, err := i.ConfigFile()
	if err != nil {
		panic(err) // an in-memory image built just before: cannot fail
	}
	return cf
}

// imageConfig is the config file of img over the layers' rootfs and history in base.
func imageConfig(img image, base *v1.ConfigFile) *v1.ConfigFile {
	cf := base.DeepCopy()
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Created = v1.Time{Time: epoch}
	cf.Config = *img.config.DeepCopy()
	return cf
}

// embeddedFiles lists the files under files/<dir> for each of dirs; a later directory's
// file replaces an earlier one's. Scripts (starting with "#!") are executable.
func embeddedFiles(fsys fs.FS, dirs []string) ([]entry, error) {
	var out []entry
	at := map[string]int{}
	for _, d := range dirs {
		root := path.Join("files", d)
		err := fs.WalkDir(fsys, root, func(p string, de fs.DirEntry, err error) error {
			if err != nil || de.IsDir() {
				return err
			}
			data, err := fs.ReadFile(fsys, p)
			if err != nil {
				return err
			}
			e := entry{path: strings.TrimPrefix(p, root+"/"), mode: 0o644, data: data}
			if strings.HasPrefix(string(data), "#!") {
				e.mode = 0o755
			}
			if i, ok := at[e.path]; ok {
				out[i] = e
				return nil
			}
			at[e.path] = len(out)
			out = append(out, e)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
