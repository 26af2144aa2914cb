package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/svcnet/svcnet/internal/auth"
	"github.com/svcnet/svcnet/internal/system"
)

func newKubeconfigCmd() *cobra.Command {
	var dataDir, server, user string
	cmd := &cobra.Command{
		Use:   "kubeconfig",
		Short: "Print a kubeconfig signed by the cluster CA in --data-dir",
		Long: "Print a kubeconfig for an identity: admin (client certificate, may do everything), viewer\n" +
			"(bearer token, may read everything but Secrets) or system:node:<name> (client certificate,\n" +
			"may write only its own Node, Lease and pod status).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ca, err := auth.LoadOrCreateCA(filepath.Join(dataDir, "pki"))
			if err != nil {
				return fmt.Errorf("--data-dir: %w", err)
			}
			tokens, err := auth.LoadOrCreateTokens(filepath.Join(dataDir, "tokens.csv"))
			if err != nil {
				return fmt.Errorf("--data-dir: %w", err)
			}
			data, err := auth.KubeconfigFor(ca, tokens, server, auth.Identity(user))
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(data)
			return err
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", defaultDataDir(), "data directory of the svcnet server")
	cmd.Flags().StringVar(&server, "server", "https://127.0.0.1:6443", "API server URL written into the kubeconfig")
	cmd.Flags().StringVar(&user, "user", "admin", "identity: admin, viewer or system:node:<name>")
	return cmd
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the svcnet version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "svcnet %s (Kubernetes API v1.37)\n", system.Version)
		},
	}
}
