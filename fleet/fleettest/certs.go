// Package fleettest makes throw-away certificates for tests of the fleet
// link (and `make demo-fleet`).
package fleettest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Certs are PEM files in one directory.
type Certs struct {
	CA                      string // ca.crt: signs the tracker and the good sidecar
	TrackerCert, TrackerKey string // for 127.0.0.1 and localhost
	SidecarCert, SidecarKey string // signed by CA, for the SidecarNames
	// ZopeCerts: a client certificate per name zope1..zope4 (CN and DNS
	// name), signed by CA, for tests of the names certificates carry.
	ZopeCerts           map[string][2]string
	RogueCert, RogueKey string // a client certificate signed by another CA
	RogueCA             string // that other CA

	ca *authority // signs Issue's certificates
}

type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// Write creates the certificates in dir.
func Write(dir string) (Certs, error) {
	c := Certs{}
	ca, err := newCA(dir, "ca", "tidstorage test CA")
	if err != nil {
		return c, err
	}
	rogue, err := newCA(dir, "rogue-ca", "someone else's CA")
	if err != nil {
		return c, err
	}
	c.ca = ca
	c.CA, c.RogueCA = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "rogue-ca.crt")
	if c.TrackerCert, c.TrackerKey, err = leaf(dir, "tracker", ca, true); err != nil {
		return c, err
	}
	if c.SidecarCert, c.SidecarKey, err = leaf(dir, "sidecar", ca, false); err != nil {
		return c, err
	}
	if c.RogueCert, c.RogueKey, err = leaf(dir, "rogue", rogue, false); err != nil {
		return c, err
	}
	c.ZopeCerts = map[string][2]string{}
	for i := 1; i <= 4; i++ {
		name := fmt.Sprintf("zope%d", i)
		cert, key, err := leafFor(dir, name, []string{name}, ca, false)
		if err != nil {
			return c, err
		}
		c.ZopeCerts[name] = [2]string{cert, key}
	}
	return c, nil
}

// SidecarNames are the names SidecarCert (and every client certificate
// Issue writes) carries as DNS names: with mutual TLS a sidecar reports
// only under a name its certificate carries (docs/deploy.md).
var SidecarNames = []string{"s1", "s2", "s3", "b", "zope1", "zope2", "zope3", "zope4", "stranger"}

// Issue writes dir/name.crt and dir/name.key, a new certificate signed by
// the CA (a server certificate for 127.0.0.1 and localhost, or a client
// one), for tests that renew certificates.
func (c Certs) Issue(dir, name string, server bool) (certFile, keyFile string, err error) {
	return leaf(dir, name, c.ca, server)
}

func newCA(dir, name, cn string) (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if err := writePEM(filepath.Join(dir, name+".crt"), "CERTIFICATE", der); err != nil {
		return nil, err
	}
	return &authority{cert: cert, key: key}, nil
}

func leaf(dir, name string, ca *authority, server bool) (string, string, error) {
	return leafFor(dir, name, SidecarNames, ca, server)
}

// leafFor: a client certificate carries the DNS names given.
func leafFor(dir, name string, names []string, ca *authority, server bool) (string, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		DNSNames: names}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return "", "", err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", err
	}
	certPath, keyPath := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := writePEM(certPath, "CERTIFICATE", der); err != nil {
		return "", "", err
	}
	return certPath, keyPath, writePEM(keyPath, "EC PRIVATE KEY", kb)
}

func writePEM(path, kind string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600)
}

// TrackerHCL is a tracker's fleet block listening on listen, with the
// tracker's certificate and the CA as client_ca_file.
func (c Certs) TrackerHCL(listen string) string {
	return fmt.Sprintf(`fleet {
  listen = %q
  tls {
    cert_file = %q
    key_file = %q
    client_ca_file = %q
  }
}
`, listen, c.TrackerCert, c.TrackerKey, c.CA)
}

// PeerCN dials a fleet listener at addr as the sidecar of these
// certificates and returns the common name of the certificate it presents.
func (c Certs) PeerCN(addr string) (string, error) {
	ca, err := os.ReadFile(c.CA)
	if err != nil {
		return "", err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return "", fmt.Errorf("%s: no certificate", c.CA)
	}
	cert, err := tls.LoadX509KeyPair(c.SidecarCert, c.SidecarKey)
	if err != nil {
		return "", err
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: pool,
		Certificates: []tls.Certificate{cert}, ServerName: "127.0.0.1", NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS13})
	if err != nil {
		return "", fmt.Errorf("dial %s: %w", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
}
