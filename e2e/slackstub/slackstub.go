// Package slackstub is a local stand-in for the Slack Web API's chat.postMessage, for the e2e
// tests and the demo: macaque posts to it through MACAQUE_SLACK_API_URL exactly as it would to
// Slack, and it keeps every message.
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

// Server records posts. Its methods are safe for concurrent use.
type Server struct {
	*httptest.Server
	mu     sync.Mutex
	posts  []Post
	notify chan Post // if set, every post is also sent here
}

// New starts a stub; close it with Close. If notify is not nil, each post is also sent on it.
func New(notify chan Post) *Server {
	s := &Server{notify: notify}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// APIURL is the value for MACAQUE_SLACK_API_URL.
func (s *Server) APIURL() string { return s.URL + "/api/" }

// Posts returns the posts received so far.
func (s *Server) Posts() []Post {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Post(nil), s.posts...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/chat.postMessage" || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p := Post{Token: r.PostForm.Get("token"), Channel: r.PostForm.Get("channel"), Text: r.PostForm.Get("text")}
	s.mu.Lock()
	s.posts = append(s.posts, p)
	s.mu.Unlock()
	if s.notify != nil {
		s.notify <- p
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":"1700000000.%06d"}`, p.Channel, len(s.Posts()))
}
