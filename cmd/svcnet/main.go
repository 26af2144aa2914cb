// Command svcnet is the Kubernetes Service networking stack in one binary.
package main

import (
	"github.com/svcnet/svcnet/internal/runtime"

	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	runtime.MaybeInit() // a container process being born: becomes the container's command
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot()
	switch filepath.Base(os.Args[0]) {
	case agnhostName: // started as /agnhost: the agnhost image's entrypoint
		root.SetArgs(append([]string{agnhostName}, os.Args[1:]...))
	case corednsName: // the agnhost image's /coredns
		root.SetArgs(append([]string{agnhostName, corednsName}, os.Args[1:]...))
	}
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	var level string
	root := &cobra.Command{
		Use:           "svcnet",
		Short:         "Kubernetes Service networking in one binary: API server, controllers, proxy, DNS",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			var l slog.Level
			if err := l.UnmarshalText([]byte(level)); err != nil {
				return fmt.Errorf("--log-level: %q is not one of debug, info, warn, error", level)
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})))
			return nil
		},
	}
	root.PersistentFlags().StringVar(&level, "log-level", "info", "log level: debug, info, warn or error")
	root.AddCommand(newUpCmd(), newServerCmd(), newAgentCmd(), newJoinCmd(), newDNSCmd(), newAgnhostCmd(), newKubeconfigCmd(), newExplainCmd(), newUICmd(), newImagesCmd(), newVersionCmd())
	return root
}
