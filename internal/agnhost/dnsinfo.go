package agnhost

import (
	"errors"
	"os"
	"strings"

	"github.com/svcnet/svcnet/internal/pod"
)

// Where dns-suffix, dns-server-list and etc-hosts look (Linux).
const (
	ResolvConfPath = "/etc/resolv.conf"
	EtcHostsPath   = "/etc/hosts"
)

// DNSSuffix is dns-suffix's output: the search list of resolv.conf at path, comma-separated.
func DNSSuffix(path string) (string, error) {
	h, err := pod.ReadHostResolv(path)
	if err != nil {
		return "", err
	}
	if len(h.Searches) == 0 {
		return "", errors.New("could not find DNS search list")
	}
	return strings.Join(h.Searches, ","), nil
}

// DNSServerList is dns-server-list's output: the nameservers of resolv.conf at
// path, comma-separated (upstream prints the first nameserver line's only;
// kubelet writes one line per server, so this prints all of them).
func DNSServerList(path string) (string, error) {
	h, err := pod.ReadHostResolv(path)
	if err != nil {
		return "", err
	}
	if len(h.Nameservers) == 0 {
		return "", errors.New("could not find DNS server list")
	}
	return strings.Join(h.Nameservers, ","), nil
}

// EtcHosts is etc-hosts' output: the file at path as it is.
func EtcHosts(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}
