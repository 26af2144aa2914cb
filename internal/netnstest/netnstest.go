// Package netnstest runs test code inside a fresh network namespace, so that
// kernel tests (iptables, nftables, kube-proxy cleanup) never touch the host's
// rules. It is imported only by tests.
package netnstest

import (
	"os"
	goruntime "runtime"
	"testing"

	"github.com/vishvananda/netns"
)

// RequireRoot skips the test unless it runs as root, and fails it instead when
// CI=true; need says what root is for, e.g. "iptables in a network namespace".
func RequireRoot(t testing.TB, need string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: this test needs root (%s)", need)
		}
		t.Skipf("needs root (%s)", need)
	}
}

// Require skips the test when err says something it needs is missing (what
// names it and how to install it), and fails it instead when CI=true.
func Require(t testing.TB, err error, what string) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true: this test needs %s: %v", what, err)
	}
	t.Skipf("needs %s: %v", what, err)
}

// Run runs f on a locked thread inside a new network namespace and waits for
// it; tools f starts inherit the thread's namespace.
func Run(t testing.TB, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		goruntime.LockOSThread() // never unlocked: the thread goes away with the namespace
		ns, err := netns.New()
		if err != nil {
			t.Error(err)
			return
		}
		defer ns.Close()
		f()
	}()
	<-done
}

// InFresh is RequireRoot then Run.
func InFresh(t testing.TB, need string, f func()) {
	t.Helper()
	RequireRoot(t, need)
	Run(t, f)
}
