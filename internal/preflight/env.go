package preflight

import (
	"errors"
	"os"
	"os/exec"

	"github.com/google/nftables"
)

// System is the machine svcnet runs on.
type System struct{}

var (
	_ Env = System{}
	_ Env = (*Fake)(nil)
)

func (System) LookPath(file string) (string, error) { return exec.LookPath(file) }

func (System) IsFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

func (System) Euid() int { return os.Geteuid() }

// NFTables lists the IPv4 tables over a netlink socket, as the proxy's first
// write would reach the kernel.
func (System) NFTables() error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	defer c.CloseLasting()
	_, err = c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	return err
}

// Fake is a machine described by a table.
type Fake struct {
	Commands map[string]bool // on PATH
	Files    map[string]bool // regular files
	UID      int
	NFTErr   error // what listing nftables tables returns
}

func (f *Fake) LookPath(file string) (string, error) {
	if f.Commands[file] {
		return "/usr/bin/" + file, nil
	}
	return "", errors.New("exec: " + file + ": executable file not found in $PATH")
}

func (f *Fake) IsFile(path string) bool { return f.Files[path] }
func (f *Fake) Euid() int               { return f.UID }
func (f *Fake) NFTables() error         { return f.NFTErr }
