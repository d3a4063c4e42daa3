// Package slackstub is a local stand-in for the Slack Web API's auth.test and chat.postMessage,
// for the e2e tests and the demo: macaque checks its token and posts to it through
// MACAQUE_SLACK_API_URL exactly as it would to Slack, and it keeps every message. FailPosts
// makes it misbehave as Slack can (rate limits, outages, answers that never come).
package slackstub

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"
)

// Post is one chat.postMessage call.
type Post struct {
	Token   string
	Channel string
	Text    string
	// ThreadTS is the thread the post replies in (chat.postMessage's thread_ts), empty for a
	// post to the channel; Broadcast says it is also sent to the channel (reply_broadcast).
	ThreadTS  string
	Broadcast bool
	// TS is the ts the stub answered with: what a reply in its thread names.
	TS string
}

// RevokedToken is a token the stub always rejects, as Slack does a revoked one.
const RevokedToken = "xoxb-revoked"

// Fault is how the stub answers one chat.postMessage call instead of as Slack normally does.
// The zero Fault answers normally.
type Fault struct {
	// Hang holds the answer this long first, or until the client gives up or the stub closes;
	// a call whose client gave up is never posted.
	Hang time.Duration
	// Status, if not zero, is the HTTP status answered (after Hang) instead of posting: 429
	// (with RetryAfter) as Slack's rate limit, 5xx as an outage.
	Status int
	// RetryAfter is the Retry-After header's seconds, sent with Status if not zero.
	RetryAfter int
}

// Server records posts. Its methods are safe for concurrent use.
type Server struct {
	*httptest.Server
	mu       sync.Mutex
	posts    []Post
	notify   chan Post       // if set, every post is also sent here
	rejected map[string]bool // tokens answered invalid_auth
	faults   []Fault         // how to answer the next chat.postMessage calls, in order
	attempts []Attempt
	closing  chan struct{} // closed by Close: hung calls let go
	once     sync.Once
}

// Attempt is one chat.postMessage call, posted or not, and how the stub answered it.
type Attempt struct {
	Post
	At     time.Time // when it arrived
	Fault  Fault     // the fault it was answered with; zero if answered normally
	Posted bool      // whether it was kept as a post
}

// New starts a stub; close it with Close. If notify is not nil, each post is also sent on it.
func New(notify chan Post) *Server {
	s := &Server{notify: notify, rejected: map[string]bool{RevokedToken: true}, closing: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Close lets go of any call it holds (see Fault.Hang) and shuts the stub down.
func (s *Server) Close() {
	s.once.Do(func() { close(s.closing) })
	s.Server.Close()
}

// FailPosts queues faults for the next chat.postMessage calls, one call each, in order, after
// any still queued; calls after them are answered normally. auth.test is never failed.
func (s *Server) FailPosts(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, faults...)
}

// PendingFaults is how many queued faults no call has used yet.
func (s *Server) PendingFaults() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.faults)
}

// Attempts returns every chat.postMessage call so far, posted or not, in the order they arrived.
func (s *Server) Attempts() []Attempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Attempt(nil), s.attempts...)
}

// RejectTokens makes the stub answer invalid_auth for each of tokens, on auth.test and on
// chat.postMessage, as Slack does for a mistyped or revoked token. RevokedToken is always rejected.
func (s *Server) RejectTokens(tokens ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range tokens {
		s.rejected[t] = true
	}
}

// APIURL is the value for MACAQUE_SLACK_API_URL.
func (s *Server) APIURL() string { return s.URL + "/api/" }

// Posts returns the chat.postMessage posts received so far (auth.test calls are not posts).
func (s *Server) Posts() []Post {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Post(nil), s.posts...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || (r.URL.Path != "/api/chat.postMessage" && r.URL.Path != "/api/auth.test") {
		http.NotFound(w, r)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	token := r.PostForm.Get("token")
	s.mu.Lock()
	rejected := s.rejected[token]
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if rejected {
		fmt.Fprint(w, `{"ok":false,"error":"invalid_auth"}`) // Slack answers a bad token with 200 and ok:false
		return
	}
	if r.URL.Path == "/api/auth.test" {
		fmt.Fprint(w, `{"ok":true,"url":"https://stub.slack.invalid/","team":"Stub","user":"macaque","team_id":"T0STUB","user_id":"U0STUB","bot_id":"B0STUB"}`)
		return
	}
	p := Post{Token: token, Channel: r.PostForm.Get("channel"), Text: r.PostForm.Get("text"),
		ThreadTS: r.PostForm.Get("thread_ts"), Broadcast: r.PostForm.Get("reply_broadcast") == "true"}
	f, i := s.attempt(p)
	if !s.hang(r, f) {
		return
	}
	if f.Status != 0 {
		writeFault(w, f)
		return
	}
	p = s.post(p, i)
	fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":%q}`, p.Channel, p.TS)
}

// attempt records p as an attempt and takes the next queued fault for it (the zero Fault when
// none is queued); it returns that fault and the attempt's index.
func (s *Server) attempt(p Post) (Fault, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var f Fault
	if len(s.faults) > 0 {
		f, s.faults = s.faults[0], s.faults[1:]
	}
	s.attempts = append(s.attempts, Attempt{Post: p, At: time.Now(), Fault: f})
	return f, len(s.attempts) - 1
}

// hang holds the call for f.Hang, and says whether it may go on: false when the client gave up
// or Close was called first, and then nothing is posted.
func (s *Server) hang(r *http.Request, f Fault) bool {
	if f.Hang <= 0 {
		return true
	}
	t := time.NewTimer(f.Hang)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	case <-s.closing:
		return false
	}
}

// writeFault answers with f's HTTP status, its Retry-After if any, and Slack's error body.
func writeFault(w http.ResponseWriter, f Fault) {
	if f.RetryAfter != 0 {
		w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
	}
	w.WriteHeader(f.Status)
	fmt.Fprintf(w, `{"ok":false,"error":"stub fault: HTTP %d"}`, f.Status)
}

// post records p, attempt i, as posted with a ts of its own, tells notify, and returns it with
// that ts.
func (s *Server) post(p Post, i int) Post {
	s.mu.Lock()
	p.TS = fmt.Sprintf("1700000000.%06d", len(s.posts)+1) // unique per post
	s.posts = append(s.posts, p)
	s.attempts[i].Posted = true
	s.mu.Unlock()
	if s.notify != nil {
		s.notify <- p
	}
	return p
}
