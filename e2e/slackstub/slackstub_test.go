package slackstub_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

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

// TestFaults checks each fault mode answers as Slack does when it misbehaves, is used by one
// call only, in order, and that a faulted call is recorded as an attempt but never as a post.
func TestFaults(t *testing.T) {
	post := func(t *testing.T, s *slackstub.Server, timeout time.Duration) (*http.Response, error) {
		t.Helper()
		client := &http.Client{Timeout: timeout}
		return client.PostForm(s.APIURL()+"chat.postMessage", url.Values{"token": {"xoxb-good"}, "channel": {"C1"}, "text": {"hi"}})
	}
	tests := []struct {
		name           string
		fault          slackstub.Fault
		timeout        time.Duration
		wantStatus     int // 0: the client gives up first
		wantRetryAfter string
		wantMinWait    time.Duration
		wantPosted     bool
	}{
		{name: "rate limit", fault: slackstub.Fault{Status: http.StatusTooManyRequests, RetryAfter: 7},
			timeout: 5 * time.Second, wantStatus: http.StatusTooManyRequests, wantRetryAfter: "7"},
		{name: "outage", fault: slackstub.Fault{Status: http.StatusServiceUnavailable},
			timeout: 5 * time.Second, wantStatus: http.StatusServiceUnavailable},
		{name: "slow but posted", fault: slackstub.Fault{Hang: 300 * time.Millisecond},
			timeout: 5 * time.Second, wantStatus: http.StatusOK, wantMinWait: 300 * time.Millisecond, wantPosted: true},
		{name: "slow, then an outage", fault: slackstub.Fault{Hang: 300 * time.Millisecond, Status: http.StatusBadGateway},
			timeout: 5 * time.Second, wantStatus: http.StatusBadGateway, wantMinWait: 300 * time.Millisecond},
		{name: "an answer that never comes is never posted", fault: slackstub.Fault{Hang: time.Hour},
			timeout: 300 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := slackstub.New(nil)
			defer s.Close()
			s.FailPosts(tt.fault)
			start := time.Now()
			resp, err := post(t, s, tt.timeout)
			waited := time.Since(start)
			if tt.wantStatus == 0 {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("got HTTP %d, want the client to time out", resp.StatusCode)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tt.wantStatus || resp.Header.Get("Retry-After") != tt.wantRetryAfter {
					t.Errorf("HTTP %d Retry-After %q, want %d %q", resp.StatusCode, resp.Header.Get("Retry-After"), tt.wantStatus, tt.wantRetryAfter)
				}
			}
			if waited < tt.wantMinWait {
				t.Errorf("answered after %v, want at least %v", waited, tt.wantMinWait)
			}
			// The stub's handler may still be letting go of a call the client gave up on.
			deadline := time.Now().Add(5 * time.Second)
			var attempts []slackstub.Attempt
			for attempts = s.Attempts(); len(attempts) != 1 && time.Now().Before(deadline); attempts = s.Attempts() {
				time.Sleep(10 * time.Millisecond)
			}
			if len(attempts) != 1 || attempts[0].Fault != tt.fault || attempts[0].Posted != tt.wantPosted {
				t.Errorf("attempts = %+v, want one with fault %+v, posted %v", attempts, tt.fault, tt.wantPosted)
			}
			if got := len(s.Posts()); got != map[bool]int{true: 1, false: 0}[tt.wantPosted] {
				t.Errorf("%d posts, want posted=%v", got, tt.wantPosted)
			}
			if s.PendingFaults() != 0 {
				t.Errorf("%d faults still queued, want the one used", s.PendingFaults())
			}
			// The next call is answered normally.
			resp, err = post(t, s, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("the call after the fault got HTTP %d, want 200", resp.StatusCode)
			}
		})
	}

	t.Run("faults are used in order, one call each", func(t *testing.T) {
		s := slackstub.New(nil)
		defer s.Close()
		s.FailPosts(slackstub.Fault{Status: 500})
		s.FailPosts(slackstub.Fault{Status: 429, RetryAfter: 1}, slackstub.Fault{Status: 502})
		var got []int
		for range 4 {
			resp, err := post(t, s, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got = append(got, resp.StatusCode)
		}
		if want := []int{500, 429, 502, 200}; !slices.Equal(got, want) {
			t.Errorf("statuses %v, want %v", got, want)
		}
	})

	t.Run("Close lets go of a hung call", func(t *testing.T) {
		s := slackstub.New(nil)
		s.FailPosts(slackstub.Fault{Hang: time.Hour})
		done := make(chan error, 1)
		go func() {
			resp, err := post(t, s, 0)
			if err == nil {
				resp.Body.Close()
			}
			done <- err
		}()
		deadline := time.Now().Add(5 * time.Second)
		for len(s.Attempts()) == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		closed := make(chan struct{})
		go func() { s.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Fatalf("Close still waiting after 5s on a hung call (attempts %+v)", s.Attempts())
		}
		select {
		case err := <-done:
			// An answer or a broken connection: either ends the call, which is the point.
			_ = err
		case <-time.After(5 * time.Second):
			t.Fatal("the hung call had no answer 5s after Close")
		}
		if len(s.Posts()) != 0 {
			t.Errorf("posts %+v, want none: the hung call must not be posted", s.Posts())
		}
	})
}

// TestThreads checks that each post gets a ts of its own, answered and recorded, and that a
// reply records the thread it is in and whether it is broadcast to the channel.
func TestThreads(t *testing.T) {
	s := slackstub.New(nil)
	defer s.Close()
	post := func(form url.Values) string {
		t.Helper()
		form.Set("token", "xoxb-good")
		form.Set("channel", "C1")
		resp, err := http.PostForm(s.APIURL()+"chat.postMessage", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			TS string `json:"ts"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return body.TS
	}
	kill := post(url.Values{"text": {"kill"}})
	post(url.Values{"text": {"verdict"}, "thread_ts": {kill}})
	alarm := post(url.Values{"text": {"alarm"}, "thread_ts": {kill}, "reply_broadcast": {"true"}})
	posts := s.Posts()
	if len(posts) != 3 || posts[0].TS != kill || posts[2].TS != alarm || kill == alarm {
		t.Fatalf("posts %+v, want three with the ts answered, each its own", posts)
	}
	if posts[0].ThreadTS != "" || posts[1].ThreadTS != kill || posts[1].Broadcast || posts[2].ThreadTS != kill || !posts[2].Broadcast {
		t.Errorf("posts %+v, want the kill in the channel, two replies in its thread, the second broadcast", posts)
	}
}
