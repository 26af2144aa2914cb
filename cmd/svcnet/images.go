package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel/trace/noop"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"

	"github.com/svcnet/svcnet/internal/containerd"
)

// imagesTarget is the container runtime the images command works on: the
// containerd svcnet runs for --data-dir, or --container-runtime-endpoint.
type imagesTarget struct {
	dataDir, rootDir, endpoint string
}

func (t *imagesTarget) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&t.dataDir, "data-dir", defaultDataDir(), "data directory of `svcnet up` (its containerd is in <data-dir>/agent/containerd)")
	cmd.Flags().StringVar(&t.rootDir, "root-dir", "", "the agent's --root-dir (default <data-dir>/agent)")
	cmd.Flags().StringVar(&t.endpoint, "container-runtime-endpoint", "", "another CRI runtime, e.g. unix:///run/containerd/containerd.sock")
}

// socket is the runtime's socket path, checked to exist.
func (t *imagesTarget) socket() (string, error) {
	if t.endpoint != "" {
		return strings.TrimPrefix(t.endpoint, "unix://"), nil
	}
	root := t.rootDir
	if root == "" {
		root = filepath.Join(t.dataDir, "agent")
	}
	sock := containerd.Socket(filepath.Join(root, "containerd"))
	if _, err := os.Stat(sock); err != nil {
		return "", fmt.Errorf("no containerd of svcnet at %s: start `svcnet up` (or `svcnet agent`) with --container-runtime cri first, or give --container-runtime-endpoint", sock)
	}
	return sock, nil
}

func newImagesCmd() *cobra.Command {
	root := &cobra.Command{Use: "images", Short: "Images of the node's container runtime: import tarballs offline, list"}
	var it imagesTarget
	imp := &cobra.Command{
		Use:   "import FILE...",
		Short: "Import image tarballs (docker-archive or OCI, e.g. from scripts/test-images.sh) into the node's containerd",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			sock, err := it.socket()
			if err != nil {
				return err
			}
			for _, f := range files {
				fmt.Fprintf(cmd.OutOrStdout(), "importing %s\n", f)
				if err := containerd.Import(cmd.Context(), sock, []string{f}, os.Stdout); err != nil {
					return err
				}
			}
			return nil
		},
	}
	it.add(imp)
	var lt imagesTarget
	list := &cobra.Command{
		Use:   "list",
		Short: "List the images the node's container runtime holds (as crictl images)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sock, err := lt.socket()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			is, err := remote.NewRemoteImageService(ctx, "unix://"+sock, 10*time.Second, noop.NewTracerProvider(), false)
			if err != nil {
				return err
			}
			defer is.Close(context.Background())
			imgs, err := is.ListImages(ctx, &runtimeapi.ImageFilter{})
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, "IMAGE\tTAG\tIMAGE ID\tSIZE")
			for _, img := range imgs {
				id := strings.TrimPrefix(img.Id, "sha256:")
				if len(id) > 13 {
					id = id[:13]
				}
				size := fmt.Sprintf("%.1fMB", float64(img.Size)/1e6)
				if len(img.RepoTags) == 0 {
					fmt.Fprintf(tw, "<none>\t<none>\t%s\t%s\n", id, size)
				}
				for _, t := range img.RepoTags {
					i := strings.LastIndex(t, ":")
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t[:i], t[i+1:], id, size)
				}
			}
			return tw.Flush()
		},
	}
	lt.add(list)
	root.AddCommand(imp, list)
	return root
}
