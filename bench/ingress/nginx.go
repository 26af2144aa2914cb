package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// nginxConf is a reverse proxy to the pods as ingress-nginx (controller v1.x
// defaults) renders it for one Ingress: worker per CPU, an upstream with
// keepalive 320 / 10000 requests, proxy_http_version 1.1 with an empty
// Connection header, Host and X-Forwarded-* set, TLS 1.2/1.3 with a session
// cache. Access logs are off, as svcnet's are by default.
const nginxConf = `worker_processes auto;
user root;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log error;
events { worker_connections 16384; multi_accept on; }
http {
  access_log off;
  client_body_temp_path %[1]s/body; proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi; uwsgi_temp_path %[1]s/uwsgi; scgi_temp_path %[1]s/scgi;
  keepalive_timeout 75s; keepalive_requests 10000;
  ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:SSL:10m; ssl_session_timeout 10m;
  upstream echo {
%[2]s    keepalive 320; keepalive_timeout 60s; keepalive_requests 10000;
  }
  server {
    listen %[3]s; listen %[4]s ssl;
    server_name bench.test;
    ssl_certificate %[5]s; ssl_certificate_key %[6]s;
    location / {
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Host $host;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_connect_timeout 5s; proxy_read_timeout 60s; proxy_send_timeout 60s;
      proxy_next_upstream error timeout;
      proxy_pass http://echo;
    }
  }
}
`

type nginxProc struct {
	cmd     *exec.Cmd
	version string
}

// startNginx runs nginx in the foreground with nginxConf in dir.
func startNginx(bin, dir string, endpoints []string, crt, key string) (*nginxProc, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var servers strings.Builder
	for _, ep := range endpoints {
		fmt.Fprintf(&servers, "    server %s max_fails=0;\n", net.JoinHostPort(ep, "8080"))
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, nginxConf, dir, servers.String(), nginxHTTP, nginxHTTPS, crt, key), 0o644); err != nil {
		return nil, err
	}
	v, _ := exec.Command(bin, "-v").CombinedOutput()
	if out, err := exec.Command(bin, "-t", "-c", conf, "-p", dir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("nginx -t: %v %s", err, out)
	}
	cmd := exec.Command(bin, "-c", conf, "-p", dir)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &nginxProc{cmd: cmd, version: strings.TrimSpace(string(v))}
	for range 100 {
		if c, err := net.Dial("tcp", nginxHTTP); err == nil {
			c.Close()
			return p, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.stop()
	return nil, fmt.Errorf("nginx did not listen on %s within 5 s", nginxHTTP)
}

// stop ends nginx and its workers (SIGTERM: fast shutdown) and waits for it.
func (p *nginxProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Wait()
}
