package agnhost

import (
	"errors"
	"strings"
	"testing"
)

func TestDialResult(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name  string
		tries []dialTry
		want  string
	}{
		{"none", nil, `{}`},
		{"one answer", []dialTry{{"pod-1", nil}}, `{"responses":["pod-1"]}`},
		{"answers", []dialTry{{"pod-1", nil}, {"pod-2", nil}}, `{"responses":["pod-1","pod-2"]}`},
		{"an error", []dialTry{{"", boom}}, `{"errors":["boom"]}`},
		{"answer then error: answers left out", []dialTry{{"pod-1", nil}, {"", boom}}, `{"errors":["boom"]}`},
		{"error then answer", []dialTry{{"", boom}, {"pod-1", nil}}, `{"errors":["boom"],"responses":["pod-1"]}`},
		{"empty last answer", []dialTry{{"pod-1", nil}, {"", nil}}, `{}`},
	} {
		if got := string(dialResult(tc.tries)); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestDialHandler(t *testing.T) {
	ne, _ := newNetExecServer(t, "pod-a")
	target, _ := newNetExecServer(t, "pod-b")
	_, targetPort := splitURL(t, target.URL)
	pc := listenUDP(t)
	go func() { _ = ServeUDP(pc, "pod-c", nil) }()
	_, udpPort := splitURL(t, "http://"+pc.LocalAddr().String())
	closed := listenUDP(t) // then a UDP port nobody listens on: the kernel refuses at once
	_, closedPort := splitURL(t, "http://"+closed.LocalAddr().String())
	closed.Close()

	for _, tc := range []struct {
		query, want string
		code        int
	}{
		{"request=hostname&host=127.0.0.1&port=" + targetPort, `{"responses":["pod-b"]}`, 200},
		{"request=hostname&host=127.0.0.1&port=" + targetPort + "&protocol=http&tries=3", `{"responses":["pod-b","pod-b","pod-b"]}`, 200},
		{"request=echo%3Fmsg%3Dhi&host=127.0.0.1&port=" + targetPort, `{"responses":["hi"]}`, 200},
		{"request=hostname&host=127.0.0.1&port=" + udpPort + "&protocol=udp", `{"responses":["pod-c"]}`, 200},
		{"request=echo%20Hi&host=127.0.0.1&port=" + udpPort + "&protocol=UDP&tries=2", `{"responses":["hi","hi"]}`, 200},
		{"request=hostname&host=127.0.0.1&port=1", `{"errors":["Get \"http://127.0.0.1:1/hostname\": dial tcp 127.0.0.1:1: connect: connection refused"]}`, 200},
		{"request=hostname&protocol=udp&host=127.0.0.1&port=" + closedPort, `{"errors":["reading from udp connection failed. err:'read udp 127.0.0.1:`, 200},
		{"request=hostname&host=127.0.0.1&port=" + targetPort + "&tries=x", "tries parameter is invalid. strconv.Atoi: parsing \"x\": invalid syntax\n", 400},
		{"host=127.0.0.1&port=" + targetPort, "request parameter not specified. <nil>\n", 400},
		{"request=hostname&host=127.0.0.1&port=1&protocol=sctp", "unsupported protocol. sctp\n", 400},
		{"request=hostname&host=127.0.0.1&port=notaport", "host and/or port param are invalid.", 400},
	} {
		code, got := get(t, ne.URL+"/dial?"+tc.query)
		if code != tc.code || !strings.HasPrefix(got, tc.want) {
			t.Errorf("/dial?%s: %d %q, want %d %q", tc.query, code, got, tc.code, tc.want)
		}
	}
}
