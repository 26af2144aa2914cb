package main

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// epoch is the modification time of every file in every layer, so that the same inputs
// give the same layer digests.
var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// entry is one file of a layer: a directory, a regular file (bytes, a host file or a local
// binary), a symlink, or a hard link to an earlier entry of the same layer.
type entry struct {
	path     string      // inside the image, relative: "usr/bin/curl"
	mode     fs.FileMode // type and permission bits
	uid, gid int
	data     []byte // regular file content, unless src or bin is set
	src      string // host file holding the content
	bin      string // local binary by name (binSvcnet, binPause), resolved to src by the builder
	link     string // symlink target
	hardlink string // earlier path of the same file
}

func dir(p string, perm fs.FileMode) entry { return entry{path: p, mode: fs.ModeDir | perm} }
func symlink(p, target string) entry {
	return entry{path: p, mode: fs.ModeSymlink | 0o777, link: target}
}
func hardlink(p, target string) entry { return entry{path: p, mode: 0o755, hardlink: target} }
func binary(p, name string) entry     { return entry{path: p, mode: 0o755, bin: name} }

// dropped reports whether p is one of drop or below one of them.
func dropped(p string, drop []string) bool {
	for _, d := range drop {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// walkRootfs lists the files of a root filesystem directory in lexical order, leaving out
// the dropped paths and special files (devices, sockets, fifos); files with several links
// become hard links to their first path.
func walkRootfs(root string, drop []string) ([]entry, error) {
	var out []entry
	type inode struct{ dev, ino uint64 }
	seen := map[inode]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if dropped(rel, drop) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := entry{path: rel, mode: info.Mode()}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			e.uid, e.gid = int(st.Uid), int(st.Gid)
			if info.Mode().IsRegular() && st.Nlink > 1 {
				key := inode{uint64(st.Dev), st.Ino}
				if first, ok := seen[key]; ok {
					e.hardlink = first
				} else {
					seen[key] = rel
				}
			}
		}
		switch {
		case info.IsDir(), e.hardlink != "":
		case info.Mode()&fs.ModeSymlink != 0:
			if e.link, err = os.Readlink(p); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			e.src = p
		default:
			return nil
		}
		out = append(out, e)
		return nil
	})
	return out, err
}

// header is the tar header of e; size is the content length of a regular file.
func header(e entry, size int64) *tar.Header {
	mode := int64(e.mode.Perm())
	if e.mode&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if e.mode&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if e.mode&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	h := &tar.Header{Name: e.path, Mode: mode, Uid: e.uid, Gid: e.gid, ModTime: epoch, Format: tar.FormatPAX}
	switch {
	case e.mode.IsDir():
		h.Typeflag, h.Name = tar.TypeDir, e.path+"/"
	case e.hardlink != "":
		h.Typeflag, h.Linkname = tar.TypeLink, e.hardlink
	case e.mode&fs.ModeSymlink != 0:
		h.Typeflag, h.Linkname = tar.TypeSymlink, e.link
	default:
		h.Typeflag, h.Size = tar.TypeReg, size
	}
	return h
}

// writeTar writes entries as an uncompressed tar stream, in their order.
func writeTar(w io.Writer, entries []entry) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		if err := writeEntry(tw, e); err != nil {
			return fmt.Errorf("%s: %w", e.path, err)
		}
	}
	return tw.Close()
}

func writeEntry(tw *tar.Writer, e entry) error {
	regular := e.mode.IsRegular() && e.hardlink == ""
	if !regular || e.src == "" {
		if err := tw.WriteHeader(header(e, int64(len(e.data)))); err != nil {
			return err
		}
		if regular {
			_, err := tw.Write(e.data)
			return err
		}
		return nil
	}
	f, err := os.Open(e.src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(header(e, st.Size())); err != nil {
		return err
	}
	_, err = io.CopyN(tw, f, st.Size())
	return err
}

// writeLayerFile writes entries as a gzip-compressed tar file, atomically.
func writeLayerFile(file string, entries []entry) error {
	tmp := file + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(f)
	err = writeTar(zw, entries)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, file)
}

// topLayer lists what an image adds on top of its Debian root filesystem: its files, its
// extra entries, the CA bundle and the busybox applet links that no lower file shadows,
// each after any parent directory the lower layer lacks. A later entry for the same path
// replaces an earlier one.
func topLayer(files, extra []entry, caBundle []byte, applets []string, lower map[string]bool) []entry {
	var out []entry
	at := map[string]int{}
	var add func(e entry)
	add = func(e entry) {
		if parent := path.Dir(e.path); parent != "." && !lower[parent] {
			if _, ok := at[parent]; !ok {
				add(dir(parent, 0o755))
			}
		}
		if i, ok := at[e.path]; ok {
			out[i] = e
			return
		}
		at[e.path] = len(out)
		out = append(out, e)
	}
	for _, e := range files {
		add(e)
	}
	for _, e := range extra {
		add(e)
	}
	if caBundle != nil {
		add(entry{path: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: caBundle})
	}
	for _, a := range applets {
		if _, ok := at[a]; ok || lower[a] || skipApplets[a] || a == "bin/busybox" {
			continue
		}
		add(symlink(a, "/bin/busybox"))
	}
	return out
}

// caBundle concatenates the certificates a Debian root filesystem ships, as
// update-ca-certificates would; nil when there are none.
func caBundle(root string) ([]byte, error) {
	certs, err := filepath.Glob(filepath.Join(root, "usr/share/ca-certificates/*/*.crt"))
	if err != nil || len(certs) == 0 {
		return nil, err
	}
	sort.Strings(certs)
	var out []byte
	for _, c := range certs {
		b, err := os.ReadFile(c)
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
		if len(b) > 0 && b[len(b)-1] != '\n' {
			out = append(out, '\n')
		}
	}
	return out, nil
}
