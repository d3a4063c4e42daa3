package policy

import (
	"strings"
	"time"
)

// testNS is the namespace of the tests' workloads and of macaque's state.
const testNS = "shop"

// tick0 is the time of the tests' first tick.
var tick0 = time.Date(2026, 3, 29, 9, 0, 0, 0, time.UTC)

// longName is a valid Deployment name of 239 characters, as long as a key of the cooldown's
// state can hold only cut and hashed.
var longName = strings.Repeat("a", 230) + "-workload"
