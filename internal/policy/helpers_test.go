package policy

import (
	"context"
	"strings"
	"testing"
	"time"
)

// testNS is the namespace of the tests' workloads and of macaque's state.
const testNS = "shop"

// tick0 is the time of the tests' first tick.
var tick0 = time.Date(2026, 3, 29, 9, 0, 0, 0, time.UTC)

// longName is a valid Deployment name of 239 characters, as long as a key of the cooldown's
// state can hold only cut and hashed.
var longName = strings.Repeat("a", 230) + "-workload"

// boundedCtx is the test's context, bounded so that a call that hangs fails the test.
func boundedCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second) // as the root tests wait
	t.Cleanup(cancel)
	return ctx
}
