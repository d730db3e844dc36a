package zeotest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// TLSCerts are throw-away PEM files for tests of ZEO over TLS, made with
// crypto/x509. They pass ZEO's strict checks (VERIFY_X509_STRICT: leaves
// with basicConstraints, keyUsage and an authority key identifier, CAs with
// keyUsage). Server certificates are for 127.0.0.1, ::1 and localhost.
type TLSCerts struct {
	Dir string
	// CA signs every certificate below but the rogue one.
	CA string
	// ZEO is the ZEO server's certificate; Proxy tidstorage's listener's
	// (the name ZODB clients check); Client a ZODB client's certificate;
	// Upstream the client certificate tidstorage presents to ZEO.
	ZEO, ZEOKey           string
	Proxy, ProxyKey       string
	Client, ClientKey     string
	Upstream, UpstreamKey string
	// RogueCA is another CA; Rogue a client certificate it signed, and
	// RogueServer a server certificate it signed.
	RogueCA                     string
	Rogue, RogueKey             string
	RogueServer, RogueServerKey string

	ca, rogue *authority
}

type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

var serial atomic.Int64

// WriteTLSCerts creates the certificates in a new temporary directory.
func WriteTLSCerts(t testing.TB) *TLSCerts {
	t.Helper()
	c := &TLSCerts{Dir: t.TempDir()}
	c.ca = c.newCA(t, "ca", "tidstorage test ZEO CA")
	c.rogue = c.newCA(t, "rogue-ca", "someone else's CA")
	c.CA, c.RogueCA = filepath.Join(c.Dir, "ca.crt"), filepath.Join(c.Dir, "rogue-ca.crt")
	day := time.Now().Add(24 * time.Hour)
	c.ZEO, c.ZEOKey = c.issue(t, c.ca, "zeo", true, day)
	c.Proxy, c.ProxyKey = c.issue(t, c.ca, "proxy", true, day)
	c.Client, c.ClientKey = c.issue(t, c.ca, "zope", false, day)
	c.Upstream, c.UpstreamKey = c.issue(t, c.ca, "tidstorage", false, day)
	c.Rogue, c.RogueKey = c.issue(t, c.rogue, "rogue", false, day)
	c.RogueServer, c.RogueServerKey = c.issue(t, c.rogue, "rogue-server", true, day)
	return c
}

// Issue writes Dir/name.crt and Dir/name.key, a new certificate signed by
// CA (a server certificate, or a client one), valid until notAfter.
func (c *TLSCerts) Issue(t testing.TB, name string, server bool, notAfter time.Time) (cert, key string) {
	t.Helper()
	return c.issue(t, c.ca, name, server, notAfter)
}

func (c *TLSCerts) newCA(t testing.TB, name, cn string) *authority {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(c.Dir, name+".crt"), "CERTIFICATE", der)
	return &authority{cert: cert, key: key}
}

func (c *TLSCerts) issue(t testing.TB, ca *authority, name string, server bool, notAfter time.Time) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if notAfter.Before(tmpl.NotBefore) {
		tmpl.NotBefore = notAfter.Add(-time.Hour)
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(c.Dir, name+".crt"), filepath.Join(c.Dir, name+".key")
	writePEM(t, certPath, "CERTIFICATE", der)
	writePEM(t, keyPath, "PRIVATE KEY", kb)
	return certPath, keyPath
}

// writePEM replaces path atomically: a renewal test rewrites files a
// running tidstorage may read at any time.
func writePEM(t testing.TB, path, kind string, der []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// ClientConfig is a Go client's TLS configuration that trusts CA and
// presents the certificate in certFile and keyFile ("" for none), for
// 127.0.0.1.
func (c *TLSCerts) ClientConfig(certFile, keyFile string) (*tls.Config, error) {
	b, err := os.ReadFile(c.CA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		// Presented whatever CAs the server names, as OpenSSL does (Go
		// would otherwise send none to a server of another CA).
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	return cfg, nil
}

// ServerConfig is a Go server's TLS configuration presenting certFile and
// keyFile and requiring client certificates signed by CA, as ZEO's <ssl>
// with authenticate does.
func (c *TLSCerts) ServerConfig(certFile, keyFile string) (*tls.Config, error) {
	b, err := os.ReadFile(c.CA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert,
		MinVersion: tls.VersionTLS12}, nil
}

// PythonArgs are zodb_client.py's options for TLS to a server whose
// certificate CA signed, presenting certFile and keyFile ("" for none).
func (c *TLSCerts) PythonArgs(certFile, keyFile string) []string {
	args := []string{"--ssl-ca", c.CA}
	if certFile != "" {
		args = append(args, "--ssl-cert", certFile, "--ssl-key", keyFile)
	}
	return args
}
