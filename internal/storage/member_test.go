package storage

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

func TestMemberValidate(t *testing.T) {
	const cluster = "a=http://127.0.0.1:2380,b=http://127.0.0.1:2381,c=http://127.0.0.1:2382"
	for _, tc := range []struct {
		name string
		m    Member
		err  string // "" = valid
	}{
		{"one member", Member{}, ""},
		{"cluster", Member{Name: "b", InitialCluster: cluster}, ""},
		{"client URL", Member{Name: "a", InitialCluster: cluster, ClientURL: "http://10.0.0.1:2379"}, ""},
		{"name without cluster", Member{Name: "a"}, "--etcd-name and --etcd-client-url need --etcd-initial-cluster"},
		{"no name", Member{InitialCluster: cluster}, "--etcd-name: required with --etcd-initial-cluster (one of a, b, c)"},
		{"unknown name", Member{Name: "d", InitialCluster: cluster}, `--etcd-name: "d" is not a member of --etcd-initial-cluster (a, b, c)`},
		{"not a list", Member{Name: "a", InitialCluster: "a"}, "--etcd-initial-cluster:"},
		{"no port", Member{Name: "a", InitialCluster: "a=http://10.0.0.1"}, "is not name=http://host:port"},
		{"https peer", Member{Name: "a", InitialCluster: "a=https://10.0.0.1:2380"}, "want http://host:port"},
		{"two URLs", Member{Name: "a", InitialCluster: "a=http://10.0.0.1:2380,a=http://10.0.0.2:2380"}, "has 2 peer URLs"},
		{"bad client URL", Member{Name: "a", InitialCluster: cluster, ClientURL: "10.0.0.1:2379"}, "--etcd-client-url:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.m.Validate()
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("Validate() = %v, want %q", err, tc.err)
			}
		})
	}
}

// TestThreeMembers starts a three-member cluster in this process: a write
// through one member is read through another, and with one member stopped
// the other two still accept writes.
func TestThreeMembers(t *testing.T) {
	// Six distinct free ports: all held open while picking, then freed for the members.
	ports := make([]int, 6)
	var held []net.Listener
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	for _, l := range held {
		l.Close()
	}
	var peers []string
	for i, n := range []string{"a", "b", "c"} {
		peers = append(peers, fmt.Sprintf("%s=http://127.0.0.1:%d", n, ports[i]))
	}
	cluster := strings.Join(peers, ",")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	type started struct {
		e   *Embedded
		err error
	}
	results := make([]chan started, 3)
	for i, n := range []string{"a", "b", "c"} {
		results[i] = make(chan started, 1)
		m := Member{Name: n, InitialCluster: cluster, ClientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[3+i])}
		dir := t.TempDir()
		go func() {
			e, err := StartMember(ctx, dir, m, slog.New(slog.DiscardHandler))
			results[i] <- started{e, err}
		}()
	}
	members := make([]*Embedded, 3)
	for i := range results {
		r := <-results[i]
		if r.err != nil {
			t.Fatal(r.err)
		}
		members[i] = r.e
	}
	defer func() {
		for _, e := range members {
			if e != nil {
				e.Close()
			}
		}
	}()
	if _, err := members[0].Client.Put(ctx, "/k1", "v1"); err != nil {
		t.Fatal(err)
	}
	got, err := members[1].Client.Get(ctx, "/k1") // linearizable: sees the write through a
	if err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Value) != "v1" {
		t.Fatalf("read through b: %v %v", got, err)
	}
	members[2].Close()
	members[2] = nil
	if _, err := members[1].Client.Put(ctx, "/k2", "v2"); err != nil {
		t.Fatalf("write with one member of three stopped: %v", err)
	}
	if got, err := members[0].Client.Get(ctx, "/k2"); err != nil || len(got.Kvs) != 1 {
		t.Fatalf("read through a after c stopped: %v %v", got, err)
	}
}
