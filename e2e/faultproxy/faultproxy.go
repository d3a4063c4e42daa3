// Package faultproxy stands between macaque and kube-apiserver and makes the API server look
// slow, lossy or wrong on demand, so the e2e tests can check what macaque reports when an
// answer is late, lost or strange, while the real API server still does (or does not do) the
// work.
//
// Everything is forwarded unchanged until a test adds a Rule. A rule matches requests by
// method, path and query and then holds the answer after forwarding (the API server commits,
// the client hears nothing), holds the request before forwarding, drops it, fails it with a
// status of its choosing, breaks the stream, or rewrites the Accept header. Rules count what
// they matched and are released by Release, Remove or the proxy's Close; Close returns only
// once every request it was holding has been let go, so no handler outlives a test.
//
// The proxy serves TLS on 127.0.0.1 with a throwaway certificate (CAPEM) rather than plain
// HTTP: clientcmd leaves a kubeconfig's token out of the client config when the server is
// http://, so over plain HTTP macaque would reach the API server as system:anonymous. It
// speaks HTTP/2 to its clients, as kube-apiserver does, and forwards macaque's own
// Authorization header, so the API server still authenticates and authorizes macaque.
package faultproxy

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Action is what a rule does with a request it matches.
type Action int

const (
	// Forward passes the request on, with the Accept header rewritten if the rule sets Accept.
	// It is also how a rule only counts requests.
	Forward Action = iota
	// HoldResponse forwards the request at once, so the API server acts on it, and keeps the
	// answer from the client until the rule is released or Delay passes (then the client gets
	// it), or the client gives up (then it never does). The proxy finishes the forwarded
	// request even if the client has gone.
	HoldResponse
	// HoldRequest keeps the request from the API server until the rule is released or Delay
	// passes (then it is forwarded), or the client gives up (then it is never forwarded).
	HoldRequest
	// Drop never forwards the request: the client hears nothing until it gives up, or until
	// Delay passes or the rule is released, when its stream is broken.
	Drop
	// Fail answers Status (500 if zero) with Body (a metav1.Status naming the rule if empty)
	// without forwarding, or after forwarding when Forward is set.
	Fail
	// Abort breaks the stream (HTTP/2 RST_STREAM) at once without forwarding, or after the API
	// server has answered when Forward is set: an answer lost on the way.
	Abort
)

var actionNames = map[Action]string{
	Forward: "forward", HoldResponse: "hold-response", HoldRequest: "hold-request",
	Drop: "drop", Fail: "fail", Abort: "abort",
}

func (a Action) String() string {
	if s, ok := actionNames[a]; ok {
		return s
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Rule says which requests to meddle with and how. Every condition set must hold for a
// request to match; the zero Rule matches everything and forwards it.
type Rule struct {
	Name string // for the proxy's log; the action and conditions if empty

	Method     string            // e.g. "DELETE"; any if empty
	Path       string            // exact URL path; any if empty
	PathPrefix string            // URL path prefix; any if empty
	Query      map[string]string // each key must be in the query with exactly this value
	NoQuery    []string          // none of these keys may be in the query
	Match      func(*http.Request) bool

	Action Action
	Accept string // if set, replaces the Accept header of what is forwarded
	Status int    // for Fail
	Body   string // for Fail
	// RetryAfter, for Fail, sets the Retry-After header (seconds), as the API server's own 429s
	// and some 5xx carry one; client-go then waits and resends what it may resend.
	RetryAfter int
	Forward    bool          // for Fail and Abort: forward first, so the API server acts
	Delay      time.Duration // for the holds and Drop: let go after Delay; zero waits for a release
	Times      int           // match at most this many requests, then let later ones pass; zero: no limit
}

// Fault is a rule installed in a proxy. Its methods are safe for concurrent use.
type Fault struct {
	rule     Rule
	p        *Proxy
	released chan struct{}
	once     sync.Once

	// guarded by p.mu, so that matching and counting against Times are one step
	count    int
	requests []string
	removed  bool
}

// Count is how many requests the rule has matched so far.
func (f *Fault) Count() int {
	f.p.mu.Lock()
	defer f.p.mu.Unlock()
	return f.count
}

// Requests are the "METHOD URI" of each request matched so far, in order.
func (f *Fault) Requests() []string {
	f.p.mu.Lock()
	defer f.p.mu.Unlock()
	return append([]string(nil), f.requests...)
}

// Release lets every request the rule holds go on (a held answer is sent, a held request is
// forwarded, a dropped one is broken off), and later matches go on at once. It is idempotent.
func (f *Fault) Release() { f.once.Do(func() { close(f.released) }) }

// Remove takes the rule out of the proxy, so later requests pass as if it never was, and
// releases what it holds.
func (f *Fault) Remove() {
	f.p.mu.Lock()
	f.removed = true
	for i, g := range f.p.rules {
		if g == f {
			f.p.rules = append(f.p.rules[:i:i], f.p.rules[i+1:]...)
			break
		}
	}
	f.p.mu.Unlock()
	f.Release()
}

// name describes the rule in the proxy's log.
func (f *Fault) name() string {
	if f.rule.Name != "" {
		return f.rule.Name
	}
	return fmt.Sprintf("%v %s %s%s", f.rule.Action, f.rule.Method, f.rule.Path, f.rule.PathPrefix)
}

// matches reports whether r meets every condition of the rule.
func (f *Fault) matches(r *http.Request) bool {
	rl := f.rule
	switch {
	case rl.Method != "" && r.Method != rl.Method,
		rl.Path != "" && r.URL.Path != rl.Path,
		rl.PathPrefix != "" && !strings.HasPrefix(r.URL.Path, rl.PathPrefix):
		return false
	}
	q := r.URL.Query()
	for k, v := range rl.Query {
		if vs, ok := q[k]; !ok || len(vs) != 1 || vs[0] != v {
			return false
		}
	}
	for _, k := range rl.NoQuery {
		if q.Has(k) {
			return false
		}
	}
	return rl.Match == nil || rl.Match(r)
}

// Entry is one request the proxy handled, for explaining a failed test.
type Entry struct {
	Method, URI string
	Rule        string // the rule that matched; empty if none
	Outcome     string // the status sent, or what became of the request
}

func (e Entry) String() string {
	rule := ""
	if e.Rule != "" {
		rule = " [" + e.Rule + "]"
	}
	return fmt.Sprintf("%s %s%s: %s", e.Method, e.URI, rule, e.Outcome)
}

// Proxy forwards to one API server. Its methods are safe for concurrent use.
type Proxy struct {
	server  *http.Server
	ln      net.Listener
	certPEM []byte
	forward *httputil.ReverseProxy

	mu       sync.Mutex
	rules    []*Fault
	log      []Entry
	closed   bool
	closing  chan struct{} // closed by Close: every held request lets go
	handlers sync.WaitGroup
}

// forwardTimeout bounds a request forwarded on behalf of a client that may have gone.
const forwardTimeout = 30 * time.Second

// New starts a proxy on a free port of 127.0.0.1 that forwards to upstream (an https URL),
// trusting caPEM for it. Close it when done.
func New(upstream string, caPEM []byte) (*Proxy, error) {
	target, err := url.Parse(upstream)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: upstream URL: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("faultproxy: no certificate in the upstream CA PEM")
	}
	cert, certPEM, err := SelfSignedCert()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	quiet := log.New(io.Discard, "", 0) // aborted streams are the point, not news
	p := &Proxy{ln: ln, certPEM: certPEM, closing: make(chan struct{})}
	p.forward = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport: &http.Transport{
			TLSClientConfig:    &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			DisableCompression: true, // the client's Accept-Encoding goes through, and its answer comes back as sent
			ForceAttemptHTTP2:  true,
			IdleConnTimeout:    90 * time.Second,
		},
		ErrorLog: quiet,
	}
	p.server = &http.Server{
		Handler:           http.HandlerFunc(p.serve),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          quiet,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
	}
	go func() { _ = p.server.ServeTLS(ln, "", "") }() // HTTP/2, as the API server speaks
	return p, nil
}

// URL is the proxy's address, for a kubeconfig's server.
func (p *Proxy) URL() string { return "https://" + p.ln.Addr().String() }

// CAPEM is the proxy's certificate, which clients must trust (a kubeconfig's
// certificate-authority-data).
func (p *Proxy) CAPEM() []byte { return p.certPEM }

// Add installs a rule after those already there; a request is handled by the first rule that
// matches it and has not used up its Times.
func (p *Proxy) Add(r Rule) *Fault {
	f := &Fault{rule: r, p: p, released: make(chan struct{})}
	p.mu.Lock()
	p.rules = append(p.rules, f)
	p.mu.Unlock()
	return f
}

// Log is every request handled so far, in the order they were finished.
func (p *Proxy) Log() []Entry {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Entry(nil), p.log...)
}

// Close lets go of every held request (breaking its stream), stops serving, and returns once
// every handler has returned. It is idempotent.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.closing)
	p.mu.Unlock()
	err := p.server.Close()
	p.handlers.Wait()
	if err != nil {
		return fmt.Errorf("faultproxy: close: %w", err)
	}
	return nil
}

// match finds the rule for r and counts r against it, in one step under p.mu. It also
// registers the handler with Close, and reports false if the proxy is closed.
func (p *Proxy) match(r *http.Request) (*Fault, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, false
	}
	p.handlers.Add(1)
	for _, f := range p.rules {
		if f.removed || (f.rule.Times > 0 && f.count >= f.rule.Times) || !f.matches(r) {
			continue
		}
		f.count++
		f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI())
		return f, true
	}
	return nil, true
}

func (p *Proxy) record(r *http.Request, f *Fault, outcome string) {
	e := Entry{Method: r.Method, URI: r.URL.RequestURI(), Outcome: outcome}
	if f != nil {
		e.Rule = f.name()
	}
	p.mu.Lock()
	p.log = append(p.log, e)
	p.mu.Unlock()
}

// wait blocks until the rule is released, its Delay passes, the proxy closes or the client
// gives up, and says which.
func (p *Proxy) wait(r *http.Request, f *Fault) string {
	var delay <-chan time.Time
	if f.rule.Delay > 0 {
		t := time.NewTimer(f.rule.Delay)
		defer t.Stop()
		delay = t.C
	}
	select {
	case <-f.released:
		return "released"
	case <-delay:
		return "delay passed"
	case <-p.closing:
		return "proxy closed"
	case <-r.Context().Done():
		return "client gave up"
	}
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	f, ok := p.match(r)
	if !ok {
		p.record(r, nil, "proxy closed")
		panic(http.ErrAbortHandler)
	}
	defer p.handlers.Done()
	if f == nil {
		sw := &statusWriter{ResponseWriter: w}
		defer func() { p.record(r, nil, sw.outcome()) }()
		p.forward.ServeHTTP(sw, r)
		return
	}
	if f.rule.Accept != "" {
		r.Header.Set("Accept", f.rule.Accept)
	}
	switch f.rule.Action {
	case HoldResponse:
		p.holdResponse(w, r, f)
	case HoldRequest:
		p.holdRequest(w, r, f)
	case Drop:
		why := p.wait(r, f)
		p.record(r, f, "dropped, stream broken: "+why)
		panic(http.ErrAbortHandler)
	case Fail:
		p.fail(w, r, f)
	case Abort:
		outcome := "aborted"
		if f.rule.Forward {
			outcome = fmt.Sprintf("forwarded (%d), answer aborted", p.forwardDetached(r).Code)
		}
		p.record(r, f, outcome)
		panic(http.ErrAbortHandler)
	default: // Forward
		sw := &statusWriter{ResponseWriter: w}
		defer func() { p.record(r, f, sw.outcome()) }()
		p.forward.ServeHTTP(sw, r)
	}
}

// holdResponse forwards r at once and keeps the answer from the client until f's hold ends;
// the client gets nothing if it gave up or the proxy closed meanwhile.
func (p *Proxy) holdResponse(w http.ResponseWriter, r *http.Request, f *Fault) {
	rec := p.forwardDetached(r)
	why := p.wait(r, f)
	if why == "client gave up" || why == "proxy closed" {
		p.record(r, f, fmt.Sprintf("forwarded (%d), answer withheld: %s", rec.Code, why))
		panic(http.ErrAbortHandler)
	}
	p.record(r, f, fmt.Sprintf("forwarded, answer %d sent: %s", rec.Code, why))
	replay(w, rec)
}

// holdRequest keeps r from the end until f's hold ends, then forwards it; it is never forwarded
// if the client gave up or the proxy closed meanwhile.
func (p *Proxy) holdRequest(w http.ResponseWriter, r *http.Request, f *Fault) {
	why := p.wait(r, f)
	if why == "client gave up" || why == "proxy closed" {
		p.record(r, f, "never forwarded: "+why)
		panic(http.ErrAbortHandler)
	}
	sw := &statusWriter{ResponseWriter: w}
	defer func() { p.record(r, f, "forwarded: "+why+", "+sw.outcome()) }()
	p.forward.ServeHTTP(sw, r)
}

// fail answers r with f's status and body (a 500 and a metav1.Status naming f by default),
// after forwarding it when f says so.
func (p *Proxy) fail(w http.ResponseWriter, r *http.Request, f *Fault) {
	status, body := f.rule.Status, f.rule.Body
	if status == 0 {
		status = http.StatusInternalServerError
	}
	if body == "" {
		body = statusJSON(status, "faultproxy: "+f.name())
	}
	outcome := fmt.Sprintf("failed with %d", status)
	if f.rule.Forward {
		outcome = fmt.Sprintf("forwarded (%d), %s", p.forwardDetached(r).Code, outcome)
	}
	p.record(r, f, outcome)
	w.Header().Set("Content-Type", "application/json")
	if f.rule.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(f.rule.RetryAfter))
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// forwardDetached forwards r to the end whether or not its client stays, and keeps the answer.
func (p *Proxy) forwardDetached(r *http.Request) *httptest.ResponseRecorder {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), forwardTimeout)
	defer cancel()
	rec := httptest.NewRecorder()
	p.forward.ServeHTTP(rec, r.WithContext(ctx))
	return rec
}

// replay sends a kept answer to the client.
func replay(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	w.WriteHeader(rec.Code)
	_, _ = io.Copy(w, bytes.NewReader(rec.Body.Bytes()))
}

// statusJSON is a metav1.Status for a failure the proxy makes up.
func statusJSON(code int, msg string) string {
	return fmt.Sprintf(`{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":%q,"code":%d}`, msg, code)
}

// statusWriter remembers the status sent, for the log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer, so ReverseProxy's flushes work.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) outcome() string {
	if w.status == 0 {
		return "no answer"
	}
	return fmt.Sprintf("%d", w.status)
}

// SelfSignedCert makes a certificate for 127.0.0.1 that is its own CA, valid for a day, and
// returns it with its PEM for the client to trust. The bench's measuring proxy uses it too.
func SelfSignedCert() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("faultproxy: key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("faultproxy: serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "macaque-e2e-faultproxy"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("faultproxy: certificate: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, certPEM, nil
}
