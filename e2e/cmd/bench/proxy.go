package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"github.com/macaque-chaos/macaque/e2e/faultproxy"
)

// record is one request macaque made, as the proxy saw it.
type record struct {
	at     time.Time // when the proxy received the request
	method string
	url    string // path and query
	status int
	bytes  int64         // response body bytes passed on to macaque: compressed if the server compressed
	took   time.Duration // from receiving the request to sending the last response byte
}

// measuringProxy stands between macaque and kube-apiserver and records every request. It
// forwards macaque's own Authorization header, so the API server still authenticates and
// authorizes macaque's ServiceAccount.
//
// It serves TLS on loopback, with a throwaway certificate, rather than plain HTTP: clientcmd
// leaves the token out of the config when a kubeconfig's server is http://, so over plain HTTP
// macaque would reach the API server as system:anonymous. With TLS macaque also pays for
// decryption as it does in a cluster.
type measuringProxy struct {
	server  *http.Server
	ln      net.Listener
	certPEM []byte // the proxy's self-signed certificate: the CA for macaque's kubeconfig
	forward *httputil.ReverseProxy

	mu      sync.Mutex
	records []record
}

// startProxy listens on a free loopback port and forwards to upstream, trusting caPEM.
//
// The upstream transport has compression disabled, which means it neither asks for gzip nor
// unzips: macaque's own Accept-Encoding goes through, and a gzipped response reaches macaque, and
// is counted, exactly as the API server sent it.
func startProxy(upstream string, caPEM []byte, logger *log.Logger) (*measuringProxy, error) {
	target, err := url.Parse(upstream)
	if err != nil {
		return nil, fmt.Errorf("parse API server URL: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("cluster CA: no certificate in PEM")
	}
	transport := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		DisableCompression:  true,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
	}
	cert, certPEM, err := faultproxy.SelfSignedCert()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy listen: %w", err)
	}
	p := &measuringProxy{ln: ln, certPEM: certPEM}
	p.forward = &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport: transport,
		ErrorLog:  logger,
	}
	p.server = &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          logger,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
	}
	go func() { _ = p.server.ServeTLS(ln, "", "") }() // speaks HTTP/2, as the API server does
	return p, nil
}

// URL is where macaque should send its requests.
func (p *measuringProxy) URL() string { return "https://" + p.ln.Addr().String() }

// CAPEM is the certificate macaque must trust to talk to the proxy.
func (p *measuringProxy) CAPEM() []byte { return p.certPEM }

// ServeHTTP forwards one request and records it once the response has been sent. It records in
// a defer because when the client hangs up mid-body (a decoder that stops reading early),
// ReverseProxy aborts the handler by panicking with http.ErrAbortHandler, and that request
// and the bytes sent so far must still count.
func (p *measuringProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	cw := &countingWriter{ResponseWriter: w}
	defer func() {
		p.mu.Lock()
		p.records = append(p.records, record{at: at, method: r.Method, url: r.URL.RequestURI(), status: cw.status,
			bytes: cw.n, took: time.Since(at)})
		p.mu.Unlock()
	}()
	p.forward.ServeHTTP(cw, r)
}

// Records returns what was recorded so far, in the order responses finished.
func (p *measuringProxy) Records() []record {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]record(nil), p.records...)
}

// Close stops listening and drops open connections.
func (p *measuringProxy) Close() error {
	if err := p.server.Close(); err != nil {
		return fmt.Errorf("close proxy: %w", err)
	}
	return nil
}

// countingWriter counts the body bytes handed to it and remembers the status.
type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (w *countingWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	// Count the whole chunk even when the write fails: the HTTP/2 server reports a failed write
	// as 0 bytes although part of it may already be on the wire (a client that hangs up after
	// the first frame), and the figure wanted is what the API server sent, not what got read.
	w.n += int64(len(b))
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer, so the proxy's flushes still work.
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
