package main

import (
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// TestShutdownFitsTheManifestsGracePeriod checks the timing promise of main.go against the
// shipped manifest: a kill in flight at SIGTERM ends before shutdownGrace, which ends before
// the kubelet's SIGKILL, with a few seconds to spare for the process to exit.
func TestShutdownFitsTheManifestsGracePeriod(t *testing.T) {
	manifest, err := os.ReadFile("macaque.yml")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*terminationGracePeriodSeconds:\s*(\d+)`).FindSubmatch(manifest)
	if m == nil {
		t.Fatal("macaque.yml sets no terminationGracePeriodSeconds")
	}
	seconds, _ := strconv.Atoi(string(m[1]))
	grace := time.Duration(seconds) * time.Second
	if kill := defaultTimeouts.total(); kill >= shutdownGrace {
		t.Errorf("a kill may take %v, not less than the shutdown grace %v: its report would be lost", kill, shutdownGrace)
	}
	if kill := defaultTimeouts.total() + cooldownTimeout + eventsTimeout; kill >= shutdownGrace {
		t.Errorf("a kill and its Events may take %v, not less than the shutdown grace %v: the killer would outlive it", kill, shutdownGrace)
	}
	if shutdownGrace+5*time.Second > grace {
		t.Errorf("shutdown grace %v leaves less than 5s before the manifest's terminationGracePeriodSeconds (%v)", shutdownGrace, grace)
	}
}
