package agnhost

import (
	"bytes"
	"os"
	"syscall"
	"testing"
)

func TestPause(t *testing.T) {
	for _, tc := range []struct {
		sigs []os.Signal
		code int
	}{
		{[]os.Signal{syscall.SIGINT}, 1},
		{[]os.Signal{syscall.SIGTERM}, 2},
		{[]os.Signal{syscall.SIGCHLD, syscall.SIGHUP, syscall.SIGTERM}, 2}, // reaps, ignores, then exits
	} {
		sigs := make(chan os.Signal, len(tc.sigs))
		for _, s := range tc.sigs {
			sigs <- s
		}
		var out bytes.Buffer
		if code := Pause(sigs, 0, &out); code != tc.code {
			t.Errorf("%v: exit %d, want %d", tc.sigs, code, tc.code)
		}
		if want := "Paused\nexiting " + string(rune('0'+tc.code)) + "\n"; out.String() != want {
			t.Errorf("%v: printed %q, want %q", tc.sigs, out.String(), want)
		}
	}
}
