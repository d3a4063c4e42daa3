package main

import (
	"bytes"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/e2e/macaqueproc"
)

// TestDemo runs the demo as `make demo` does, for a few ticks, and checks that what it shows is
// what the README promises: macaque kills a pod of the app, Slack hears of it, the Deployment
// is back to full readiness after the kill, and everything stops cleanly.
func TestDemo(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "macaque")
	if err := macaqueproc.Build("../../..", bin); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := run(t.Context(), &out, options{every: 2 * time.Second, duration: 25 * time.Second, binary: bin, manifest: "../../../macaque.yml"})
	t.Logf("demo output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	text := out.String()
	kill := regexp.MustCompile("slack #chaos: :monkey_face: killed pod `demo/(web-[a-z0-9-]+)`")
	m := kill.FindStringSubmatchIndex(text)
	if m == nil {
		t.Fatal("no kill reported to Slack")
	}
	victim := text[m[2]:m[3]]
	if !strings.Contains(text, `selector="chaos.macaque.dev/enabled=true"`) {
		t.Error("macaque did not run with the manifest's selector")
	}
	dying := strings.Index(text, "pod "+victim+" terminating")
	if dying < 0 {
		t.Fatalf("the watch did not show %s terminating", victim)
	}
	if !strings.Contains(text[dying:], "deployment web: 3/3 ready") {
		t.Errorf("the app did not come back to 3/3 ready after %s was killed", victim)
	}
	// The verdict on the first kill, shown as a reply to it: timed, back at full strength.
	verdict := regexp.MustCompile("slack #chaos, reply to the kill of " + regexp.QuoteMeta(victim) +
		": :white_check_mark: recovered: deployment `demo/web`: web lost " + regexp.QuoteMeta(victim) +
		": replacement web-[a-z0-9-]+ created in [0-9.]+ s, Ready in [0-9.]+ s, web back to 3/3 in [0-9.]+ s")
	if !verdict.MatchString(text[m[0]:]) {
		t.Errorf("no recovered verdict shown beside the kill of %s", victim)
	}
	if !strings.Contains(text, "macaque stopped cleanly") {
		t.Error("macaque did not stop cleanly")
	}
}
