package storage

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	"go.uber.org/zap"
)

// Embedded is an etcd member running inside this process.
type Embedded struct {
	etcd   *embed.Etcd
	Client *clientv3.Client
	// ClientURL is where other processes can reach this etcd (loopback unless
	// Member.ClientURL said otherwise).
	ClientURL string
}

// freeLoopbackURLs picks n distinct free loopback TCP ports (all held open while
// picking, so the kernel cannot hand out the same one twice).
func freeLoopbackURLs(n int) ([]url.URL, error) {
	var out []url.URL
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		out = append(out, url.URL{Scheme: "http", Host: l.Addr().String()})
	}
	return out, nil
}

// StartEmbedded starts etcd with its data in dir, listening on loopback only, and
// waits until it serves.
func StartEmbedded(ctx context.Context, dir string, log *slog.Logger) (*Embedded, error) {
	return StartMember(ctx, dir, Member{}, log)
}

// StartMember starts etcd with its data in dir as the member m describes (the
// zero Member: a cluster of one on loopback) and waits until it serves: for a
// cluster of several, until a quorum of members has met.
func StartMember(ctx context.Context, dir string, m Member, log *slog.Logger) (*Embedded, error) {
	cfg := embed.NewConfig()
	cfg.Name = "svcnet"
	cfg.Dir = filepath.Join(dir, "etcd")
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.LogLevel = "error"
	urls, err := freeLoopbackURLs(2)
	if err != nil {
		return nil, fmt.Errorf("etcd ports: %w", err)
	}
	cu, pu := urls[0], urls[1]
	if err := m.configure(cfg, &cu, &pu); err != nil {
		return nil, err
	}
	cfg.ListenClientUrls = []url.URL{cu}
	cfg.AdvertiseClientUrls = []url.URL{cu}
	cfg.ListenPeerUrls = []url.URL{pu}
	cfg.AdvertisePeerUrls = []url.URL{pu}
	if m.InitialCluster == "" { // embed.NewConfig's default cluster names the member "default"
		cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	}
	cfg.AutoCompactionMode = "periodic"
	cfg.AutoCompactionRetention = "5m"
	cfg.QuotaBackendBytes = 8 << 30
	log.Info("starting embedded etcd", "dir", cfg.Dir, "member", cfg.Name, "cluster", cfg.InitialCluster)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd in %s: %w", cfg.Dir, err)
	}
	limit := time.After(60 * time.Second) // one member: it serves at once
	if m.InitialCluster != "" {
		limit = nil // the other members start when their machines do
	}
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-e.Server.ReadyNotify():
			return &Embedded{etcd: e, Client: v3client.New(e.Server), ClientURL: cu.String()}, nil
		case <-tick.C:
			log.Info("waiting for a quorum of etcd members", "member", cfg.Name, "cluster", cfg.InitialCluster)
		case <-limit:
			e.Close()
			return nil, fmt.Errorf("embedded etcd in %s did not become ready within 60s", cfg.Dir)
		case <-ctx.Done():
			e.Close()
			return nil, ctx.Err()
		}
	}
}

// Close stops etcd.
func (e *Embedded) Close() {
	e.Client.Close()
	e.etcd.Close()
}

// DialEtcd connects to an external etcd cluster.
func DialEtcd(endpoints []string) (*clientv3.Client, error) {
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("connect to etcd %v: %w", endpoints, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Status(ctx, endpoints[0]); err != nil {
		c.Close()
		return nil, fmt.Errorf("etcd %s does not answer: %w", endpoints[0], err)
	}
	return c, nil
}
