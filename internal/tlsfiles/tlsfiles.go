// Package tlsfiles loads the certificate, key and CA files of one TLS end of
// a ZEO connection (the zeo blocks' tls and upstream_tls, docs/config.md)
// and reads them again on demand (SIGHUP): new connections use what was
// read last, established ones keep theirs, and files that do not load leave
// the previous ones in use. It also tells when each loaded certificate
// expires, for the admin endpoint's metrics.
//
// TLS 1.2 is the minimum (what ZEO's Python ssl contexts accept), TLS 1.3
// is preferred (crypto/tls negotiates the highest both ends know).
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

// MinVersion is the lowest TLS version accepted or offered.
const MinVersion = tls.VersionTLS12

// Files are the files of one end, as the configuration names them.
type Files struct {
	// CertFile and KeyFile: this end's certificate (with its chain) and key.
	// Required on a server; on a client both or neither (a client
	// certificate, for servers that authenticate clients).
	CertFile, KeyFile string
	// CAFile: on a server, the CA that must sign every client's
	// certificate ("" asks for none: client_ca_file); on a client, the CA
	// that signs the server's certificate ("" = the system's roots: ca_file).
	CAFile string
	// ServerName: a client checks the server's certificate against it
	// (required on a client).
	ServerName string
}

// Role says which end a Set is.
type Role int

const (
	Server Role = iota // accepts connections (the zeo block's tls)
	Client             // dials (upstream_tls)
)

// Set is one end's loaded files.
type Set struct {
	block string
	role  Role
	files Files
	cur   atomic.Pointer[loaded]
}

type loaded struct {
	cfg      *tls.Config
	expiries []Expiry
}

// Expiry is when one loaded certificate file stops being valid: the
// earliest NotAfter of the certificates in it (a CA file may hold several).
type Expiry struct {
	Block    string // the configuration block: zeo.NAME.tls, zeo.NAME.upstream_tls, fleet.tls, tracker.tls
	File     string
	Attr     string // cert_file, client_ca_file or ca_file
	Subject  string // of the certificate that expires first
	NotAfter time.Time
}

// New loads the files of one end, those of a configuration block (block
// names it in Expiries). Errors name the attribute and the file.
func New(block string, role Role, f Files) (*Set, error) {
	s := &Set{block: block, role: role, files: f}
	return s, s.Reload()
}

// CheckPair loads a certificate and its key as New would
// (`tidstorage config check`).
func CheckPair(certFile, keyFile string) (Expiry, error) {
	_, exp, err := loadPair(certFile, keyFile)
	return exp, err
}

// CheckCA loads a CA file as New would.
func CheckCA(path string) (Expiry, error) {
	_, exp, err := loadPool(path)
	return exp, err
}

// Reload reads the files again. On an error, which names the file, the
// files read before stay in use.
func (s *Set) Reload() error {
	l, err := load(s.role, s.files)
	if err != nil {
		return err
	}
	s.cur.Store(l)
	return nil
}

// Config is the configuration read last, for one new connection. It is
// shared: do not modify it.
func (s *Set) Config() *tls.Config { return s.cur.Load().cfg }

// Expiries lists the loaded certificate files (own certificate first, then
// the CA file), with when each expires.
func (s *Set) Expiries() []Expiry {
	out := append([]Expiry(nil), s.cur.Load().expiries...)
	for i := range out {
		out[i].Block = s.block
	}
	return out
}

// Files are the paths the Set reads.
func (s *Set) Files() Files { return s.files }

func load(role Role, f Files) (*loaded, error) {
	l := &loaded{}
	cfg := &tls.Config{MinVersion: MinVersion}
	switch {
	case f.CertFile != "" && f.KeyFile != "":
		cert, exp, err := loadPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
		l.expiries = append(l.expiries, exp)
	case f.CertFile != "" || f.KeyFile != "":
		return nil, errors.New("cert_file and key_file go together: give both or neither")
	case role == Server:
		return nil, errors.New("a TLS listener needs cert_file and key_file")
	}
	caAttr := "ca_file"
	if role == Server {
		caAttr = "client_ca_file"
	}
	if f.CAFile != "" {
		pool, exp, err := loadPool(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", caAttr, f.CAFile, err)
		}
		exp.Attr = caAttr
		l.expiries = append(l.expiries, exp)
		if role == Server {
			cfg.ClientCAs = pool
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		} else {
			cfg.RootCAs = pool
		}
	}
	if role == Client {
		if f.ServerName == "" {
			return nil, errors.New("no server name to check the server's certificate against")
		}
		cfg.ServerName = f.ServerName
		// Reconnections resume a session instead of a full handshake
		// (about a quarter of a connection's setup through the proxy,
		// BENCHMARKS.md). One cache per load: sessions verified against
		// files replaced by a reload are not resumed.
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(256)
	}
	l.cfg = cfg
	return l, nil
}

func loadPair(certFile, keyFile string) (tls.Certificate, Expiry, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, Expiry{}, fmt.Errorf("cert_file: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, Expiry{}, fmt.Errorf("key_file: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, Expiry{}, fmt.Errorf("cert_file %s with key_file %s: %w", certFile, keyFile, err)
	}
	leaf := cert.Leaf // set by X509KeyPair, unless GODEBUG says otherwise
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return tls.Certificate{}, Expiry{}, fmt.Errorf("cert_file %s: %w", certFile, err)
		}
		cert.Leaf = leaf
	}
	return cert, Expiry{File: certFile, Attr: "cert_file", Subject: leaf.Subject.String(), NotAfter: leaf.NotAfter}, nil
}

// loadPool reads a CA file: one or more PEM certificates.
func loadPool(path string) (*x509.CertPool, Expiry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, Expiry{}, err
	}
	pool := x509.NewCertPool()
	exp := Expiry{File: path}
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, Expiry{}, err
		}
		pool.AddCert(c)
		if exp.NotAfter.IsZero() || c.NotAfter.Before(exp.NotAfter) {
			exp.NotAfter, exp.Subject = c.NotAfter, c.Subject.String()
		}
	}
	if exp.NotAfter.IsZero() {
		return nil, Expiry{}, errors.New("no PEM certificate in it")
	}
	return pool, exp, nil
}
