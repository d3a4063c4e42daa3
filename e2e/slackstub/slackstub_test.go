package slackstub_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/macaque-chaos/macaque/e2e/slackstub"
)

// call posts form to the stub's method and decodes Slack's envelope.
func call(t *testing.T, s *slackstub.Server, method, token string) (ok bool, slackErr string) {
	t.Helper()
	resp, err := http.PostForm(s.APIURL()+method, url.Values{"token": {token}, "channel": {"C1"}, "text": {"hi"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	return body.OK, body.Error
}

func TestAuthTestAndRejectedTokens(t *testing.T) {
	s := slackstub.New(nil)
	defer s.Close()
	s.RejectTokens("xoxb-mistyped")
	tests := []struct {
		name, method, token string
		wantOK              bool
	}{
		{"any token passes auth.test", "auth.test", "xoxb-good", true},
		{"the revoked token fails auth.test", "auth.test", slackstub.RevokedToken, false},
		{"a configured token fails auth.test", "auth.test", "xoxb-mistyped", false},
		{"a rejected token cannot post", "chat.postMessage", "xoxb-mistyped", false},
		{"a good token posts", "chat.postMessage", "xoxb-good", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, slackErr := call(t, s, tt.method, tt.token)
			if ok != tt.wantOK || (!ok && slackErr != "invalid_auth") {
				t.Errorf("%s with %s: ok %v error %q, want ok %v (or invalid_auth)", tt.method, tt.token, ok, slackErr, tt.wantOK)
			}
		})
	}
	// Only the one accepted chat.postMessage is a post.
	if posts := s.Posts(); len(posts) != 1 || posts[0].Token != "xoxb-good" || posts[0].Text != "hi" {
		t.Errorf("posts = %+v, want the one accepted chat.postMessage", posts)
	}
}
