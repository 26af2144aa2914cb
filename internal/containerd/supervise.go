package containerd

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Restart back-off of a containerd that exited on its own.
const (
	restartInitial = time.Second
	restartMax     = 30 * time.Second
)

// Supervisor keeps the node's containerd running: when it exits while the
// agent still needs it, it is started again after a back-off, as a service
// manager would (its containers live on in their shims meanwhile).
type Supervisor struct {
	mu   sync.Mutex
	p    *Process
	stop chan struct{}
	done chan struct{}
}

// Supervise starts containerd and keeps it running until Stop.
func Supervise(ctx context.Context, c Config) (*Supervisor, error) {
	if c.Log == nil {
		c.Log = slog.Default()
	}
	p, err := Start(ctx, c)
	if err != nil {
		return nil, err
	}
	s := &Supervisor{p: p, stop: make(chan struct{}), done: make(chan struct{})}
	go s.watch(c)
	return s, nil
}

func (s *Supervisor) watch(c Config) {
	defer close(s.done)
	delay := restartInitial
	for {
		s.mu.Lock()
		p := s.p
		s.mu.Unlock()
		select {
		case <-s.stop:
			return
		case <-p.done:
		}
		c.Log.Error("containerd exited; starting it again", "after", delay)
		select {
		case <-s.stop:
			return
		case <-time.After(delay):
		}
		np, err := Start(context.Background(), c)
		if err != nil {
			c.Log.Error("restarting containerd failed", "err", err)
			delay = min(delay*2, restartMax)
			continue // p.done stays closed: the next round waits out the longer delay
		}
		s.mu.Lock()
		s.p = np
		s.mu.Unlock()
		delay = restartInitial
	}
}

// Stop ends supervision, then containerd.
func (s *Supervisor) Stop() {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	p := s.p
	s.mu.Unlock()
	p.Stop()
}
