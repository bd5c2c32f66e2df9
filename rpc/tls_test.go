package rpc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

// newTestCA makes a self-signed CA.
func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// issue signs a leaf certificate for 127.0.0.1 with the given usage.
func (ca *testCA) issue(t *testing.T, name string, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestMutualTLS checks that a server requiring client certificates
// accepts one signed by its CA and refuses one signed by another, and a
// client without any.
func TestMutualTLS(t *testing.T) {
	ca, other := newTestCA(t, "bifrost test CA"), newTestCA(t, "stranger CA")
	svc, echo := echoService(t)
	s := newTestServer(t, Config{TLS: &tls.Config{
		Certificates: []tls.Certificate{ca.issue(t, "server", x509.ExtKeyUsageServerAuth)},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.pool,
	}}, svc)
	addr := serveTCP(t, s)
	clientTLS := func(certs ...tls.Certificate) ClientConfig {
		return ClientConfig{TLS: &tls.Config{RootCAs: ca.pool, Certificates: certs}}
	}

	t.Run("right certificate", func(t *testing.T) {
		c := dialTest(t, addr, clientTLS(ca.issue(t, "client", x509.ExtKeyUsageClientAuth)))
		if got, err := echo.Call(context.Background(), c, []byte("secret")); err != nil || string(got) != "secret" {
			t.Errorf("got %q, %v", got, err)
		}
	})
	refused := map[string]ClientConfig{
		"wrong certificate": clientTLS(other.issue(t, "client", x509.ExtKeyUsageClientAuth)),
		"no certificate":    clientTLS(),
	}
	for name, cfg := range refused {
		t.Run(name, func(t *testing.T) {
			// TLS 1.3 clients finish their handshake before the server
			// checks their certificate, so the refusal may come at the
			// dial or at the first call.
			c, err := Dial(context.Background(), addr, cfg)
			if err == nil {
				defer c.Close()
				_, err = echo.Call(context.Background(), c, []byte("secret"))
			}
			if err == nil {
				t.Error("call with a refused certificate worked")
			}
		})
	}
	t.Run("server not trusted", func(t *testing.T) {
		cfg := ClientConfig{TLS: &tls.Config{RootCAs: other.pool, Certificates: []tls.Certificate{ca.issue(t, "client", x509.ExtKeyUsageClientAuth)}}}
		if c, err := Dial(context.Background(), addr, cfg); err == nil {
			c.Close()
			t.Error("dial trusted a server signed by an unknown CA")
		}
	})
}
