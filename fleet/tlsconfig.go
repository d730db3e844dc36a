package fleet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"

	"google.golang.org/grpc/credentials"
)

// Certs are one end's mutual-TLS files: its certificate and key, and the
// CA that signs the other end. They are read at start and again by Reload
// (SIGHUP): new connections use what was read last, established ones keep
// theirs, and files that do not load leave the previous ones in use.
type Certs struct {
	server     bool
	certFile   string
	keyFile    string
	caFile     string
	caAttr     string // the CA file's name in the configuration, for errors
	serverName string
	cur        atomic.Pointer[tls.Config] // complete: certificate, CA pool
}

// ServerTLS is the tracker's mutual-TLS configuration: its certificate, and
// the CA that must sign every sidecar's client certificate.
func ServerTLS(certFile, keyFile, clientCAFile string) (*Certs, error) {
	c := &Certs{server: true, certFile: certFile, keyFile: keyFile, caFile: clientCAFile, caAttr: "client_ca_file"}
	return c, c.Reload()
}

// ClientTLS is a sidecar's mutual-TLS configuration: its client
// certificate, and the CA that signs the tracker's certificate.
func ClientTLS(certFile, keyFile, caFile, serverName string) (*Certs, error) {
	c := &Certs{certFile: certFile, keyFile: keyFile, caFile: caFile, caAttr: "ca_file", serverName: serverName}
	return c, c.Reload()
}

// Reload reads the files again. On an error, which names the file, the
// certificates read before stay in use.
func (c *Certs) Reload() error {
	cfg, err := c.load()
	if err != nil {
		return err
	}
	c.cur.Store(cfg)
	return nil
}

func (c *Certs) load() (*tls.Config, error) {
	certPEM, err := os.ReadFile(c.certFile)
	if err != nil {
		return nil, fmt.Errorf("fleet tls: cert_file: %w", err)
	}
	keyPEM, err := os.ReadFile(c.keyFile)
	if err != nil {
		return nil, fmt.Errorf("fleet tls: key_file: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("fleet tls: cert_file %s with key_file %s: %w", c.certFile, c.keyFile, err)
	}
	pool, err := loadPool(c.caFile)
	if err != nil {
		return nil, fmt.Errorf("fleet tls: %s: %w", c.caAttr, err)
	}
	if c.server {
		return &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13}, nil
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: c.serverName,
		MinVersion: tls.VersionTLS13}, nil
}

// Leaf is the certificate in use (for logs: its subject and expiry).
func (c *Certs) Leaf() *x509.Certificate {
	cfg := c.cur.Load()
	if len(cfg.Certificates) == 0 {
		return nil
	}
	return cfg.Certificates[0].Leaf
}

// Files are the certificate, key and CA files, for logs.
func (c *Certs) Files() (certFile, keyFile, caFile string) { return c.certFile, c.keyFile, c.caFile }

// serverConfig is the tracker's tls.Config: each handshake takes the
// configuration read last (certificate and client CA pool).
func (c *Certs) serverConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return c.cur.Load(), nil }}
}

// clientCreds are a sidecar's transport credentials: each handshake uses
// the files read last. crypto/tls has a client-side hook for the
// certificate (GetClientCertificate) but none for the roots, so the whole
// configuration is taken per handshake, keeping the standard verification.
func (c *Certs) clientCreds() credentials.TransportCredentials {
	return &reloadingCreds{TransportCredentials: credentials.NewTLS(c.cur.Load()), c: c}
}

type reloadingCreds struct {
	credentials.TransportCredentials // Info, and the server side (unused)
	c                                *Certs
}

func (r *reloadingCreds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return credentials.NewTLS(r.c.cur.Load()).ClientHandshake(ctx, authority, raw)
}

func (r *reloadingCreds) Clone() credentials.TransportCredentials {
	return &reloadingCreds{TransportCredentials: r.TransportCredentials.Clone(), c: r.c}
}

func loadPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, errors.New(path + ": no PEM certificate in it")
	}
	return pool, nil
}
