package main

import (
	goflag "flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/svcnet/svcnet/internal/agnhost"
)

// agnhostName is the base name under which the binary behaves as `svcnet agnhost`
// (the image's entrypoint /agnhost is a copy or link of svcnet).
const agnhostName = "agnhost"

func newAgnhostCmd() *cobra.Command {
	root := &cobra.Command{Use: agnhostName, Short: "Built-in test workload, a drop-in for Kubernetes' agnhost image"}
	// Upstream accepts klog's flags (e2e tests pass some, e.g. --v).
	klogFlags := goflag.NewFlagSet("klog", goflag.ContinueOnError)
	klog.InitFlags(klogFlags)
	root.PersistentFlags().AddGoFlagSet(klogFlags)
	root.AddCommand(newNetexecCmd(), newServeHostnameCmd(), newPorterCmd(), newTestWebserverCmd(), newPauseCmd(),
		newConnectCmd(), newGetCmd(), newLoadCmd())
	root.AddCommand(newDNSInfoCmds()...)
	root.AddCommand(newCoreDNSCmd())
	return root
}

// corednsName is the base name under which the binary behaves as the agnhost
// image's /coredns (`svcnet agnhost coredns`).
const corednsName = "coredns"

// newCoreDNSCmd serves the hosts plugin of a Corefile as CoreDNS would; it takes
// CoreDNS's single-dash flags (-conf FILE, -dns.port N).
func newCoreDNSCmd() *cobra.Command {
	return &cobra.Command{Use: corednsName + " [-conf Corefile] [-dns.port 53]", DisableFlagParsing: true,
		Short: "Answer from a Corefile's hosts block, as the agnhost image's /coredns",
		RunE: func(cmd *cobra.Command, args []string) error {
			fs := goflag.NewFlagSet(corednsName, goflag.ContinueOnError)
			conf := fs.String("conf", "Corefile", "Corefile to load")
			port := fs.Int("dns.port", 53, "port to serve DNS on")
			if err := fs.Parse(args); err != nil {
				return err
			}
			if err := checkPort("dns.port", *port); err != nil {
				return err
			}
			f, err := os.Open(*conf)
			if err != nil {
				return err
			}
			h, err := agnhost.ParseCorefile(f)
			f.Close()
			if err != nil {
				return err
			}
			return agnhost.ServeHosts(cmd.Context(), ":"+strconv.Itoa(*port), h, os.Stdout)
		}}
}

// stderrLog is how agnhost subcommands log, as upstream's (time-stamped, to stderr).
func stderrLog() *log.Logger { return log.New(os.Stderr, "", log.LstdFlags) }

func checkPort(flag string, p int) error {
	if p < 1 || p > 65535 {
		return fmt.Errorf("--%s: %d is not a port number", flag, p)
	}
	return nil
}

func newNetexecCmd() *cobra.Command {
	var c agnhost.NetExecConfig
	var udpAddrs string
	var delay int
	cmd := &cobra.Command{
		Use:   "netexec",
		Short: "HTTP(S) server with /, /clientip, /dial, /echo, /exit, /header, /healthz, /readyz, /hostname, /redirect, /shell, /upload, /shutdown; UDP hostname | echo <text> | clientip",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkPort("http-port", c.HTTPPort); err != nil {
				return err
			}
			if c.UDPPort < -1 || c.UDPPort > 65535 {
				return fmt.Errorf("--udp-port: %d is not a port number (-1: off)", c.UDPPort)
			}
			if udpAddrs != "" {
				c.UDPAddresses = strings.Split(udpAddrs, ",")
			}
			c.DelayShutdown = time.Duration(delay) * time.Second
			c.Log = stderrLog()
			code, err := agnhost.RunNetExec(cmd.Context(), agnhost.Hostname(), c)
			if err == nil && code != 0 {
				os.Exit(code) // /exit?code=N
			}
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&c.HTTPPort, "http-port", 8080, "HTTP listen port")
	f.IntVar(&c.UDPPort, "udp-port", 8081, "UDP listen port (-1 or 0: no UDP server)")
	f.IntVar(&c.SCTPPort, "sctp-port", -1, "SCTP listen port (accepted; SCTP is not served)")
	f.StringVar(&c.CertFile, "tls-cert-file", "", "serve HTTPS with this x509 certificate (localhost.crt, missing here: a generated one)")
	f.StringVar(&c.KeyFile, "tls-private-key-file", "", "the private key of --tls-cert-file")
	f.StringVar(&c.HTTPOverride, "http-override", "", "answer every request as if it were a GET of this path and query")
	f.StringVar(&udpAddrs, "udp-listen-addresses", "", "comma-separated IP addresses the UDP server binds (default: all)")
	f.IntVar(&delay, "delay-shutdown", 0, "seconds to keep serving after SIGTERM (/readyz answers 503)")
	return cmd
}

func newServeHostnameCmd() *cobra.Command {
	c := agnhost.ServeHostnameConfig{}
	cmd := &cobra.Command{
		Use:   "serve-hostname",
		Short: "Serve this pod's name over HTTP (default), or raw TCP / UDP",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkPort("port", c.Port); err != nil {
				return err
			}
			c.Log = stderrLog()
			return agnhost.RunServeHostname(cmd.Context(), agnhost.Hostname(), c)
		},
	}
	f := cmd.Flags()
	f.IntVar(&c.Port, "port", 9376, "port number")
	f.BoolVar(&c.TCP, "tcp", false, "serve raw over TCP (with --http=false)")
	f.BoolVar(&c.UDP, "udp", false, "serve raw over UDP (with --http=false)")
	f.BoolVar(&c.HTTP, "http", true, "serve HTTP")
	f.BoolVar(&c.Close, "close", false, "close the connection after each HTTP request")
	return cmd
}

func newPorterCmd() *cobra.Command {
	var jsonResponse bool
	cmd := &cobra.Command{
		Use:   "porter",
		Short: "Serve each SERVE_{PORT,TCP_PORT,UDP_PORT,TLS_PORT}_<n>=<value> variable's value on port n (TLS: CERT_FILE, KEY_FILE)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := agnhost.PorterConfig{Servers: agnhost.ParsePorterEnv(os.Environ()), CertFile: os.Getenv("CERT_FILE"),
				KeyFile: os.Getenv("KEY_FILE"), JSONResponse: jsonResponse, Log: stderrLog()}
			if c.CertFile == "" {
				c.CertFile = "localhost.crt"
			}
			if c.KeyFile == "" {
				c.KeyFile = "localhost.key"
			}
			return agnhost.RunPorter(cmd.Context(), c)
		},
	}
	cmd.Flags().BoolVar(&jsonResponse, "json-response", false, `answer {"Method": <request method>, "Body": <value>}`)
	return cmd
}

func newTestWebserverCmd() *cobra.Command {
	var port int
	cmd := &cobra.Command{
		Use:   "test-webserver",
		Short: "Serve the files of / over HTTP",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkPort("port", port); err != nil {
				return err
			}
			return agnhost.Serve(cmd.Context(), ":"+strconv.Itoa(port), agnhost.TestWebserver("/"))
		},
	}
	cmd.Flags().IntVar(&port, "port", 80, "port number")
	return cmd
}

func newPauseCmd() *cobra.Command {
	var delay int
	cmd := &cobra.Command{
		Use:   "pause",
		Short: "Wait for SIGINT (exit 1) or SIGTERM (exit 2); reap orphans as PID 1",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			sigs := make(chan os.Signal, 8)
			signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
			if os.Getpid() == 1 {
				signal.Notify(sigs, syscall.SIGCHLD)
			}
			os.Exit(agnhost.Pause(sigs, time.Duration(delay)*time.Second, cmd.OutOrStdout()))
		},
	}
	cmd.Flags().IntVar(&delay, "delay-shutdown", 0, "seconds to wait after the signal before exiting")
	return cmd
}

func newConnectCmd() *cobra.Command {
	var timeout time.Duration
	var protocol, udpData string
	cmd := &cobra.Command{
		Use:   "connect HOST:PORT",
		Short: "Try a TCP or UDP connection; on failure print UNKNOWN, TIMEOUT, DNS, REFUSED or OTHER to stderr and exit 1",
		Args:  cobra.ExactArgs(1),
		Run: func(cmd *cobra.Command, args []string) {
			if msg := agnhost.Connect(args[0], protocol, timeout, udpData); msg != "" {
				fmt.Fprint(os.Stderr, msg)
				os.Exit(1)
			}
		},
	}
	f := cmd.Flags()
	f.DurationVar(&timeout, "timeout", 0, "maximum time before returning an error (0: the system's)")
	f.StringVar(&protocol, "protocol", "tcp", "tcp or udp")
	f.StringVar(&udpData, "udp-data", "hostname", "the UDP payload sent to the server")
	f.String("sctp-data", "hostname", "accepted; SCTP is not supported")
	return cmd
}

// newDNSInfoCmds returns dns-suffix, dns-server-list and etc-hosts.
func newDNSInfoCmds() []*cobra.Command {
	printer := func(use, short string, get func(string) (string, error), path string) *cobra.Command {
		return &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				s, err := get(path)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), s)
				return nil
			}}
	}
	return []*cobra.Command{
		printer("dns-suffix", "Print the DNS search list of /etc/resolv.conf, comma-separated", agnhost.DNSSuffix, agnhost.ResolvConfPath),
		printer("dns-server-list", "Print the nameservers of /etc/resolv.conf, comma-separated", agnhost.DNSServerList, agnhost.ResolvConfPath),
		printer("etc-hosts", "Print /etc/hosts", agnhost.EtcHosts, agnhost.EtcHostsPath),
	}
}

func newGetCmd() *cobra.Command {
	var timeout time.Duration
	get := &cobra.Command{
		Use:   "get URL",
		Short: "Fetch URL over HTTP and print the body (a curl for pods)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return agnhost.Get(cmd.Context(), args[0], timeout, cmd.OutOrStdout())
		},
	}
	get.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "give up after this long")
	return get
}

func newLoadCmd() *cobra.Command {
	var requests int
	var bytes int64
	var lowPorts bool
	load := &cobra.Command{
		Use:   "load URL",
		Short: "Measure HTTP from here: --requests N (a new connection each) prints requests/s, --bytes N (netexec /bytes) prints MiB/s",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case requests > 0 && bytes == 0:
				r, err := agnhost.Requests(cmd.Context(), args[0], requests, lowPorts)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%.1f\n", r)
			case bytes > 0 && requests == 0:
				r, err := agnhost.Download(cmd.Context(), args[0], bytes)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%.1f\n", r)
			default:
				return fmt.Errorf("give one of --requests or --bytes (a positive number)")
			}
			return nil
		},
	}
	load.Flags().IntVar(&requests, "requests", 0, "sequential GETs of URL, a new connection each; prints requests/s")
	load.Flags().Int64Var(&bytes, "bytes", 0, "download this many bytes from URL's /bytes; prints MiB/s")
	load.Flags().BoolVar(&lowPorts, "low-ports", false, "source ports from 11000-29999 (off the ephemeral range)")
	return load
}
