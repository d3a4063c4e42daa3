// Package slackstub is a local stand-in for the Slack Web API's auth.test and chat.postMessage,
// for the e2e tests and the demo: macaque checks its token and posts to it through
// MACAQUE_SLACK_API_URL exactly as it would to Slack, and it keeps every message.
package slackstub

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
)

// Post is one chat.postMessage call.
type Post struct {
	Token   string
	Channel string
	Text    string
}

// RevokedToken is a token the stub always rejects, as Slack does a revoked one.
const RevokedToken = "xoxb-revoked"

// Server records posts. Its methods are safe for concurrent use.
type Server struct {
	*httptest.Server
	mu       sync.Mutex
	posts    []Post
	notify   chan Post       // if set, every post is also sent here
	rejected map[string]bool // tokens answered invalid_auth
}

// New starts a stub; close it with Close. If notify is not nil, each post is also sent on it.
func New(notify chan Post) *Server {
	s := &Server{notify: notify, rejected: map[string]bool{RevokedToken: true}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
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
	p := Post{Token: token, Channel: r.PostForm.Get("channel"), Text: r.PostForm.Get("text")}
	s.mu.Lock()
	s.posts = append(s.posts, p)
	s.mu.Unlock()
	if s.notify != nil {
		s.notify <- p
	}
	fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":"1700000000.%06d"}`, p.Channel, len(s.Posts()))
}
