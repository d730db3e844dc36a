package fleet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"

	"github.com/tidstorage/tidstorage/internal/tlsfiles"
	"google.golang.org/grpc/credentials"
)

// Certs are one end's mutual-TLS files: its certificate and key, and the
// CA that signs the other end. They are read at start and again by Reload
// (SIGHUP): new connections use what was read last, established ones keep
// theirs, and files that do not load leave the previous ones in use. The
// files are read by internal/tlsfiles, as the zeo blocks' are; the fleet
// link asks TLS 1.3 and always a certificate of the other end.
type Certs struct {
	set *tlsfiles.Set
}

// ServerTLS is the tracker's mutual-TLS configuration: its certificate, and
// the CA that must sign every sidecar's client certificate.
func ServerTLS(certFile, keyFile, clientCAFile string) (*Certs, error) {
	return newCerts("fleet.tls", "client_ca_file", tlsfiles.Server,
		tlsfiles.Files{CertFile: certFile, KeyFile: keyFile, CAFile: clientCAFile})
}

// ClientTLS is a sidecar's mutual-TLS configuration: its client
// certificate, and the CA that signs the tracker's certificate, whose
// name (or address) serverName is.
func ClientTLS(certFile, keyFile, caFile, serverName string) (*Certs, error) {
	return newCerts("tracker.tls", "ca_file", tlsfiles.Client,
		tlsfiles.Files{CertFile: certFile, KeyFile: keyFile, CAFile: caFile, ServerName: serverName})
}

func newCerts(block, caAttr string, role tlsfiles.Role, f tlsfiles.Files) (*Certs, error) {
	switch {
	case f.CertFile == "" || f.KeyFile == "":
		return nil, errors.New("fleet tls: mutual TLS needs cert_file and key_file")
	case f.CAFile == "":
		return nil, fmt.Errorf("fleet tls: mutual TLS needs %s", caAttr)
	}
	set, err := tlsfiles.New(block, role, f)
	if err != nil {
		return nil, fmt.Errorf("fleet tls: %w", err)
	}
	return &Certs{set: set}, nil
}

// Reload reads the files again. On an error, which names the file, the
// certificates read before stay in use.
func (c *Certs) Reload() error {
	if err := c.set.Reload(); err != nil {
		return fmt.Errorf("fleet tls: %w", err)
	}
	return nil
}

// current is the configuration read last, for one handshake.
func (c *Certs) current() *tls.Config {
	cfg := c.set.Config().Clone()
	cfg.MinVersion = tls.VersionTLS13
	return cfg
}

// Leaf is the certificate in use (for logs: its subject and expiry).
func (c *Certs) Leaf() *x509.Certificate {
	cfg := c.set.Config()
	if len(cfg.Certificates) == 0 {
		return nil
	}
	return cfg.Certificates[0].Leaf
}

// Files are the certificate, key and CA files, for logs.
func (c *Certs) Files() (certFile, keyFile, caFile string) {
	f := c.set.Files()
	return f.CertFile, f.KeyFile, f.CAFile
}

// Expiries lists the certificate in use and the CA file in use, with when
// each expires (the admin endpoint's metrics).
func (c *Certs) Expiries() []tlsfiles.Expiry { return c.set.Expiries() }

// serverConfig is the tracker's tls.Config: each handshake takes the
// configuration read last (certificate and client CA pool).
func (c *Certs) serverConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return c.current(), nil }}
}

// clientCreds are a sidecar's transport credentials: each handshake uses
// the files read last. crypto/tls has a client-side hook for the
// certificate (GetClientCertificate) but none for the roots, so the whole
// configuration is taken per handshake, keeping the standard verification.
func (c *Certs) clientCreds() credentials.TransportCredentials {
	return &reloadingCreds{TransportCredentials: credentials.NewTLS(c.current()), c: c}
}

type reloadingCreds struct {
	credentials.TransportCredentials // Info, and the server side (unused)
	c                                *Certs
}

func (r *reloadingCreds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return credentials.NewTLS(r.c.current()).ClientHandshake(ctx, authority, raw)
}

func (r *reloadingCreds) Clone() credentials.TransportCredentials {
	return &reloadingCreds{TransportCredentials: r.TransportCredentials.Clone(), c: r.c}
}
