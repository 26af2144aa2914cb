package main

import (
	"io/fs"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// image describes one tarball: its names, what its root filesystem is made of, and the
// config that the real image has (so Kubernetes' command/args merge works the same).
type image struct {
	file string   // tarball name in the output directory
	tags []string // repo tags, as the real image is named
	// conformanceTags are added with -conformance: the names Kubernetes' e2e suite (v1.34,
	// test/utils/image/manifest.go) runs where this image behaves as the one it names.
	conformanceTags []string
	// conformance images are written only with -conformance.
	conformance bool
	// gateway images (the Gateway API conformance suite's) are written only with -gateway.
	gateway  bool
	packages []string // Debian packages, with their dependencies, for the root filesystem
	drop     []string // rootfs paths left out besides dropPaths (a dependency the image never runs)
	// busybox links the busybox applets that no package provides. Debian's busybox sh runs
	// its own applets before PATH, so images with programs of their own (httpd, dig,
	// nslookup) take dash as /bin/sh.
	busybox bool
	files   []string // directories under files/ copied into the image, later ones win
	extra   []entry  // directories, links and local binaries added on top
	config  v1.Config
}

// defaultPath is the PATH of the Debian-based official images.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Names of the local binaries an image takes (the -svcnet and -pause flags).
const (
	binSvcnet    = "svcnet"
	binPause     = "pause"
	binEchoBasic = "echo-basic"
)

// baseDirs are the directories every Debian-based image has besides the packages' own.
var baseDirs = []entry{
	dir("root", 0o700), dir("tmp", fs.ModeSticky|0o777), dir("run", 0o755), dir("home", 0o755),
	dir("var/tmp", fs.ModeSticky|0o777), symlink("var/run", "/run"),
}

// images is the table of every image the builder writes.
var images = []image{
	{
		file: "pause.tar",
		tags: []string{"registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.6"},
		// the e2e framework's pause (GetPauseImageName)
		conformanceTags: []string{"registry.k8s.io/pause:3.10.1"},
		extra:           []entry{binary("pause", binPause)},
		config: v1.Config{
			Env:        []string{defaultPath},
			Entrypoint: []string{"/pause"},
			User:       "65535:65535",
		},
	},
	{
		file: "busybox.tar",
		tags: []string{"docker.io/library/busybox:latest"},
		// e2e-test-images/busybox is the official busybox image rebuilt
		conformanceTags: []string{"registry.k8s.io/e2e-test-images/busybox:1.37.0-1"},
		packages:        []string{"busybox-static"},
		busybox:         true,
		files:           []string{"base"},
		extra:           baseDirs,
		config:          v1.Config{Env: []string{defaultPath}, Cmd: []string{"sh"}},
	},
	{
		file: "agnhost.tar",
		tags: []string{"registry.k8s.io/e2e-test-images/agnhost:2.56"},
		// netcat-openbsd as in the real image: the e2e suite's checks run `nc -v -t -w 2`
		// and `nc -vuz`, which Debian's busybox nc does not take. GNU wget: Debian's
		// busybox-static wget dies of a segmentation fault (the suite runs `wget -q -O - -T 1`).
		packages: []string{"dash", "busybox-static", "curl", "dnsutils", "libc-bin", "ca-certificates", "netbase", "netcat-openbsd", "wget"},
		busybox:  true,
		files:    []string{"base"},
		extra: append([]entry{
			binary("agnhost", binSvcnet),
			hardlink("usr/local/bin/svcnet", "agnhost"),
			hardlink("coredns", "agnhost"), // as the real image's /coredns (a Corefile's hosts block)
			// Debian's alternative (no maintainer scripts run); usr/bin/nc shadows busybox's
			symlink("bin/nc", "/bin/nc.openbsd"),
			symlink("usr/bin/nc", "/bin/nc.openbsd"),
		}, baseDirs...),
		config: v1.Config{
			Env:        []string{defaultPath},
			Entrypoint: []string{"/agnhost"},
			Cmd:        []string{"pause"},
		},
	},
	{
		file: "httpd.tar",
		tags: []string{"docker.io/library/httpd:latest", "docker.io/library/httpd:2.4"},
		// e2e-test-images/httpd is the official httpd image (port 80, httpd-foreground)
		conformanceTags: []string{"registry.k8s.io/e2e-test-images/httpd:2.4.38-4", "registry.k8s.io/e2e-test-images/httpd:2.4.39-4"},
		packages:        []string{"apache2-bin", "media-types", "dash", "busybox-static", "ca-certificates"},
		// apache2-bin depends on perl only for scripts (apxs, split-logfile) an image never runs.
		drop:    []string{"usr/bin/perl", "usr/bin/perl5.36.0", "usr/lib/x86_64-linux-gnu/perl", "usr/lib/x86_64-linux-gnu/perl-base", "usr/share/perl", "usr/share/perl5"},
		busybox: true,
		files:   []string{"base", "httpd"},
		extra: append([]entry{
			dir("usr/local/apache2/logs", 0o755),
			symlink("usr/local/apache2/modules", "/usr/lib/apache2/modules"),
		}, baseDirs...),
		config: v1.Config{
			Env:          []string{"PATH=/usr/local/apache2/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HTTPD_PREFIX=/usr/local/apache2"},
			Cmd:          []string{"httpd-foreground"},
			WorkingDir:   "/usr/local/apache2",
			ExposedPorts: map[string]struct{}{"80/tcp": {}},
			StopSignal:   "SIGWINCH",
		},
	},
	{
		file: "nginx.tar",
		tags: []string{"docker.io/library/nginx:latest", "docker.io/library/nginx:1.17.1"},
		// e2e-test-images/nginx is the official nginx image (port 80, "Welcome to nginx!")
		conformanceTags: []string{"registry.k8s.io/e2e-test-images/nginx:1.14-4", "registry.k8s.io/e2e-test-images/nginx:1.15-4"},
		packages:        []string{"nginx", "dash", "busybox-static", "ca-certificates"},
		busybox:         true,
		files:           []string{"base", "nginx"},
		extra: append([]entry{
			dir("var/log/nginx", 0o755),
			symlink("var/log/nginx/access.log", "/dev/stdout"),
			symlink("var/log/nginx/error.log", "/dev/stderr"),
			dir("var/lib/nginx", 0o755),
			dir("var/cache/nginx", 0o755),
		}, baseDirs...),
		config: v1.Config{
			Env:          []string{defaultPath},
			Cmd:          []string{"nginx", "-g", "daemon off;"},
			ExposedPorts: map[string]struct{}{"80/tcp": {}},
			StopSignal:   "SIGQUIT",
		},
	},
	{
		// The DNS conformance tests' "jessie" querier: a Debian shell with dig and getent,
		// run with `sh -c` (the real one is Debian jessie with dnsutils, Cmd bash).
		file:        "jessie-dnsutils.tar",
		tags:        []string{"registry.k8s.io/e2e-test-images/jessie-dnsutils:1.7"},
		conformance: true,
		packages:    []string{"dash", "busybox-static", "dnsutils", "libc-bin", "netbase", "ca-certificates"},
		busybox:     true,
		files:       []string{"base"},
		extra:       baseDirs,
		config:      v1.Config{Env: []string{defaultPath}, Cmd: []string{"sh"}},
	},
	{
		// The Gateway API conformance suite's backend (conformance/echo-basic of
		// sigs.k8s.io/gateway-api/conformance v1.5.0, built static): it answers every
		// request with a JSON echo of it on :3000. The real image is distroless with it
		// as /echo-basic.
		file:    "echo-basic.tar",
		tags:    []string{"gcr.io/k8s-staging-gateway-api/echo-basic:v20260204-monthly-2026.01-60-g28382302"},
		gateway: true,
		extra:   []entry{binary("echo-basic", binEchoBasic), dir("tmp", fs.ModeSticky|0o777)},
		config:  v1.Config{Env: []string{defaultPath}, Entrypoint: []string{"/echo-basic"}},
	},
	{
		// The suite's base manifests also run CoreDNS (-conf /root/Corefile) in the
		// namespace whose pods must all be Ready; only UDPRoute tests query it. svcnet's
		// /coredns (as in the agnhost image) serves a Corefile's hosts block and ignores
		// the other plugins.
		file:    "coredns.tar",
		tags:    []string{"registry.k8s.io/coredns/coredns:v1.12.2"},
		gateway: true,
		extra:   []entry{binary("coredns", binSvcnet), dir("tmp", fs.ModeSticky|0o777)},
		config:  v1.Config{Env: []string{defaultPath}, Entrypoint: []string{"/coredns"}},
	},
}

// selectImages is the images to write: with conformance, also the conformance images and
// every image's conformance tags; with gateway, only the Gateway API suite's images; only,
// when not empty, names the tarballs to keep.
func selectImages(conformance, gateway bool, only string) []image {
	var out []image
	for _, img := range images {
		if img.conformance && !conformance || img.gateway != gateway {
			continue
		}
		if only != "" && !slices.Contains(strings.Split(only, ","), img.file) {
			continue
		}
		if conformance {
			img.tags = append(append([]string(nil), img.tags...), img.conformanceTags...)
		}
		img.conformanceTags = nil
		out = append(out, img)
	}
	return out
}

// dropPaths are left out of every Debian root filesystem: documentation, package manager
// state, and files the container runtime provides (/dev, hostname, resolv.conf, hosts).
var dropPaths = []string{
	"dev", "proc", "sys",
	"etc/hostname", "etc/hosts", "etc/resolv.conf", "etc/apt", "etc/dpkg", "etc/debconf.conf",
	"var/lib/apt", "var/lib/dpkg", "var/cache/apt", "var/cache/debconf", "var/cache/ldconfig",
	"var/log/apt", "var/log/dpkg.log", "var/log/alternatives.log", "var/log/bootstrap.log",
	"usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "usr/share/lintian",
	"usr/share/bash-completion", "usr/share/zsh", "usr/share/gdb", "usr/share/bug",
	"usr/share/debconf", "usr/share/initramfs-tools", "usr/share/pixmaps",
}

// skipApplets are busybox applets not linked: they would pretend to be another system's tools.
var skipApplets = map[string]bool{"linuxrc": true, "usr/bin/dpkg": true, "usr/bin/dpkg-deb": true, "bin/rpm": true, "usr/bin/rpm2cpio": true}
