package podlogs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestLogsWriteRotateRead(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "0.log")
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { clock = clock.Add(time.Second); return clock }
	l, err := Open(path, 200, now)
	if err != nil {
		t.Fatal(err)
	}
	l.Write("stdout", []byte("one\ntw"))
	l.Write("stderr", []byte("err line\n"))
	l.Write("stdout", []byte("o\nthree\n"))
	for i := 0; i < 5; i++ { // pushes the file past 200 bytes: rotated once
		l.Write("stdout", []byte("filler line\n"))
	}
	l.Write("stdout", []byte("unterminated"))
	l.Close()
	if _, err := os.Stat(path + ".1"); err != nil {
		t.Fatalf("no rotated file: %v", err)
	}
	read := func(o Options) string {
		var b bytes.Buffer
		if err := Read(context.Background(), path, o, &b, func() bool { return false }); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	all := read(Options{})
	if !strings.HasPrefix(all, "one\nerr line\ntwo\nthree\nfiller line\n") || !strings.HasSuffix(all, "filler line\nunterminated\n") {
		t.Errorf("whole log across rotation:\n%s", all)
	}
	two := int64(2)
	if got := read(Options{TailLines: &two}); got != "filler line\nunterminated\n" {
		t.Errorf("tail 2 = %q", got)
	}
	limit := int64(6)
	if got := read(Options{LimitBytes: &limit}); got != "one\ner" {
		t.Errorf("limitBytes 6 = %q", got)
	}
	if got := read(Options{Timestamps: true, TailLines: &two}); !strings.HasPrefix(got, "2026-01-01T00:00:") {
		t.Errorf("timestamps: %q", got)
	}
	since := time.Date(2026, 1, 1, 0, 0, 9, 0, time.UTC)
	if got := read(Options{SinceTime: &since}); strings.Contains(got, "one") || !strings.Contains(got, "unterminated") {
		t.Errorf("sinceTime: %q", got)
	}
}

func TestLogsFollow(t *testing.T) {
	// In a bubble the sleeps and the follower's poll ticker run on fake time.
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "0.log")
		l, err := Open(path, 0, time.Now)
		if err != nil {
			t.Fatal(err)
		}
		l.Write("stdout", []byte("before\n"))
		running := make(chan struct{})
		var out bytes.Buffer
		done := make(chan error, 1)
		go func() {
			done <- Read(context.Background(), path, Options{Follow: true}, &out, func() bool {
				select {
				case <-running:
					return false
				default:
					return true
				}
			})
		}()
		time.Sleep(150 * time.Millisecond)
		l.Write("stdout", []byte("after\n"))
		l.Close()
		time.Sleep(150 * time.Millisecond)
		close(running)
		select {
		case err := <-done:
			if err != nil || out.String() != "before\nafter\n" {
				t.Errorf("follow = %q, %v", out.String(), err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("follow did not end after the container stopped")
		}
	})
}
