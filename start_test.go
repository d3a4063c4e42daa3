package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	"github.com/macaque-chaos/macaque/internal/kube"
	"github.com/macaque-chaos/macaque/internal/policy"
	"github.com/macaque-chaos/macaque/internal/testkit"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
)

func TestShortfall(t *testing.T) {
	for _, c := range []struct {
		name           string
		got, want, n   int
		short, wantMsg string
	}{
		{"all asked for", 2, 2, 5, "", ""},
		{"as many candidates as asked for, some passed over", 1, 2, 2, "", "1 of 2 asked for: no other pick could be killed"},
		{"fewer candidates than asked for", 1, 3, 2, "", "1 of 3 asked for: only 2 candidates"},
		{"stopped short, saying why", 1, 3, 9, "macaque is stopping", "1 of 3 asked for: macaque is stopping"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := shortfall(c.got, c.want, c.n, false, killCount{n: c.want}, c.short); got != c.wantMsg {
				t.Errorf("shortfall = %q, want %q", got, c.wantMsg)
			}
		})
	}
}

func TestLogStartWarnsOnlyWithoutThePauseSwitch(t *testing.T) {
	for _, c := range []struct {
		name string
		p    started
		warn bool
	}{
		{"no switch", started{noPause: "not in a pod"}, true},
		{"a switch", started{pause: policy.NewPauseSwitch(nil, "chaos", "macaque", time.Now, discardLogger())}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			logStart(slog.New(slog.NewTextHandler(&b, nil)), settings{scope: scope{namespaces: []string{testNS}}, selector: labels.Everything()}, c.p)
			if got := strings.Contains(b.String(), "pause switch unavailable"); got != c.warn {
				t.Errorf("warned %v, want %v:\n%s", got, c.warn, b.String())
			}
		})
	}
}

// TestLogStartSaysTheWebhook: the start line says whether events go to a webhook.
func TestLogStartSaysTheWebhook(t *testing.T) {
	for _, tt := range []struct {
		url, want string
	}{{"", "webhook=false"}, {"https://hooks.example/macaque", "webhook=true"}} {
		var b bytes.Buffer
		s := settings{scope: scope{namespaces: []string{testNS}}, selector: labels.Everything(), webhook: webhookSettings{url: tt.url}}
		logStart(slog.New(slog.NewTextHandler(&b, nil)), s, started{noPause: "not in a pod"})
		if !strings.Contains(b.String(), tt.want) {
			t.Errorf("MACAQUE_WEBHOOK_URL=%q: start line %q, want %s", tt.url, b.String(), tt.want)
		}
	}
}

// TestARefusedStartFreesItsPort: a start refused after the HTTP port was taken (no API server
// to find) lets it go, so that the next start, or anything else, can have it; with no server
// at all, nothing is closed.
func TestARefusedStartFreesItsPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	for _, httpAddr := range []string{addr, ""} {
		t.Run("MACAQUE_HTTP_ADDR="+httpAddr, func(t *testing.T) {
			unsetMacaqueEnv(t)
			t.Setenv("MACAQUE_CRONTAB", "@hourly")
			t.Setenv("MACAQUE_NAMESPACE", testNS)
			t.Setenv("MACAQUE_HTTP_ADDR", httpAddr)
			t.Setenv("KUBECONFIG", t.TempDir()+"/none") // no kubeconfig, not in a pod: refused
			t.Setenv("KUBERNETES_SERVICE_HOST", "")
			if err := run(t.Context(), nil, io.Discard, io.Discard); err == nil {
				t.Fatal("run started with no API server to find")
			}
			if httpAddr == "" {
				return
			}
			again, err := net.Listen("tcp", addr)
			if err != nil {
				t.Fatalf("the port of a refused start is still taken: %v", err)
			}
			_ = again.Close()
		})
	}
}

// TestPreflightRecoveryScopeChecksEveryNamedNamespace: each namespace named is checked, not
// only the first: a watch refused in the second stops macaque at start.
func TestPreflightRecoveryScopeChecksEveryNamedNamespace(t *testing.T) {
	srv := fakeapi.New(t)
	srv.Fail = func(r fakeapi.Request) *metav1.Status {
		if r.Query.Get("watch") == "true" && strings.Contains(r.Path, "/namespaces/cart/") {
			return fakeapi.Forbidden("watch", "cart")
		}
		return nil
	}
	api, err := kube.NewClient(&rest.Config{Host: srv.URL, QPS: -1})
	if err != nil {
		t.Fatal(err)
	}
	err = preflightRecoveryScope(t.Context(), api, scope{namespaces: []string{"shop", "cart"}})
	var bad *configError
	if !errors.As(err, &bad) || !strings.Contains(err.Error(), `in "cart"`) {
		t.Fatalf("preflightRecoveryScope = %v, want MACAQUE_RECOVERY_TIMEOUT refused in cart", err)
	}
}

// TestDetailsKeepEveryLine: a report's resumed line, picks passed over, note and error each
// have their line under it, none overwriting another.
func TestDetailsKeepEveryLine(t *testing.T) {
	got := details(Result{Resumed: "the pause expired", Passed: []string{"shop/web-1: gone"}, Note: "grace 0s", Err: errors.New("boom")})
	for _, want := range []string{"\nResumed: the pause expired", "\nPassed over first: `shop/web-1` (gone)", "\nNote: grace 0s", "\n> boom"} {
		if !strings.Contains(got, want) {
			t.Errorf("details = %q, missing %q", got, want)
		}
	}
}

func TestOutlivingEndsGraceAfterItsParent(t *testing.T) {
	parent, stop := context.WithCancel(t.Context())
	child, cancel := outliving(parent, 100*time.Millisecond)
	defer cancel()
	stop()
	if child.Err() != nil {
		t.Fatal("ended with its parent, want grace later")
	}
	select {
	case <-child.Done():
		t.Fatal("ended within 50 ms of its parent, want 100 ms")
	case <-time.After(50 * time.Millisecond):
	}
	testkit.Recv(t, child.Done(), "the end grace after the parent's")

	// Its cancel ends it at once, parent or not.
	child, cancel = outliving(t.Context(), time.Hour)
	cancel()
	testkit.Recv(t, child.Done(), "the end its cancel asked for")
}
