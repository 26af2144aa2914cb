package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/svcnet/svcnet/internal/agnhost"
)

func newAgnhostCmd() *cobra.Command {
	root := &cobra.Command{Use: "agnhost", Short: "Built-in test workload (like Kubernetes' agnhost image)"}
	var port int
	sh := &cobra.Command{
		Use:   "serve-hostname",
		Short: "Answer every HTTP request with this pod's name",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if port < 1 || port > 65535 {
				return fmt.Errorf("--port: %d is not a port number", port)
			}
			return agnhost.Serve(cmd.Context(), ":"+strconv.Itoa(port), agnhost.ServeHostname(agnhost.Hostname()))
		},
	}
	sh.Flags().IntVar(&port, "port", 9376, "HTTP port")
	var httpPort, udpPort int
	ne := &cobra.Command{
		Use:   "netexec",
		Short: "HTTP /hostname /clientip /echo?msg= /shutdown, and UDP hostname | echo <text> | clientip",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for name, p := range map[string]int{"--http-port": httpPort, "--udp-port": udpPort} {
				if p < 0 || p > 65535 {
					return fmt.Errorf("%s: %d is not a port number", name, p)
				}
			}
			host := agnhost.Hostname()
			ctx, stop := context.WithCancel(cmd.Context())
			defer stop()
			if udpPort > 0 {
				pc, err := net.ListenPacket("udp", ":"+strconv.Itoa(udpPort))
				if err != nil {
					return fmt.Errorf("--udp-port: %w", err)
				}
				defer pc.Close()
				go func() { _ = agnhost.ServeUDP(pc, host) }()
			}
			return agnhost.Serve(ctx, ":"+strconv.Itoa(httpPort), agnhost.NetExec(host, stop))
		},
	}
	ne.Flags().IntVar(&httpPort, "http-port", 8080, "HTTP port")
	ne.Flags().IntVar(&udpPort, "udp-port", 8081, "UDP port (0: off)")
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
	root.AddCommand(sh, ne, get, load)
	return root
}
