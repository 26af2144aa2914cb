package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestInsecureRegistryFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
		err  string
	}{
		{args: nil, want: nil},
		{args: []string{"--insecure-registry", "127.0.0.1:5000", "--insecure-registry=registry.lan:443"}, want: []string{"127.0.0.1:5000", "registry.lan:443"}},
		{args: []string{"--insecure-registry", "registry.lan"}, err: `invalid argument "registry.lan" for "--insecure-registry" flag`},
		{args: []string{"--insecure-registry", "registry.lan:0"}, err: "--insecure-registry"},
	} {
		var f agentFlags
		fs := pflag.NewFlagSet("agent", pflag.ContinueOnError)
		fs.SetOutput(&strings.Builder{})
		f.add(fs)
		err := fs.Parse(tc.args)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: err = %v, want one with %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(f.o.InsecureRegistries, tc.want) {
			t.Errorf("%v: registries %v, %v; want %v", tc.args, f.o.InsecureRegistries, err, tc.want)
		}
	}
}
