package auth

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Identity names a kubeconfig user: "admin", "viewer" or "system:node:<name>".
type Identity string

// KubeconfigFor builds a kubeconfig for id against server, signed by ca: admins and
// nodes get client certificates, the viewer gets its bearer token from tokens.
func KubeconfigFor(ca *CA, tokens *Tokens, server string, id Identity) ([]byte, error) {
	user := string(id)
	authInfo := &clientcmdapi.AuthInfo{}
	switch {
	case user == AdminUser:
		cert, key, err := ca.Issue(AdminUser, []string{GroupMasters}, nil, 365*24*time.Hour)
		if err != nil {
			return nil, err
		}
		authInfo.ClientCertificateData, authInfo.ClientKeyData = cert, key
	case user == ViewerUser:
		tok, ok := tokens.TokenFor(ViewerUser)
		if !ok {
			return nil, fmt.Errorf("no token for user %q in the token file", ViewerUser)
		}
		authInfo.Token = tok
	case strings.HasPrefix(user, NodeUserPrefix) && len(user) > len(NodeUserPrefix):
		cert, key, err := ca.Issue(user, []string{GroupNodes}, nil, 365*24*time.Hour)
		if err != nil {
			return nil, err
		}
		authInfo.ClientCertificateData, authInfo.ClientKeyData = cert, key
	default:
		return nil, fmt.Errorf("--user: unknown identity %q (want admin, viewer or system:node:<name>)", user)
	}
	name := "svcnet"
	ctxName := strings.TrimPrefix(user, "system:") + "@" + name
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca.CertPEM}
	cfg.AuthInfos[user] = authInfo
	cfg.Contexts[ctxName] = &clientcmdapi.Context{Cluster: name, AuthInfo: user, Namespace: "default"}
	cfg.CurrentContext = ctxName
	return clientcmd.Write(*cfg)
}
