package recovery

import (
	"testing"

	"github.com/macaque-chaos/macaque/internal/kube"
)

// TestClaimsChangeWakesEveryWaiter: the follows that wait for a change of the claims all wait on
// one channel, which the next change closes: none misses it, however many asked before it.
func TestClaimsChangeWakesEveryWaiter(t *testing.T) {
	var cl claims
	_, _, _, first := cl.replacementOf(&claim{top: "uid-web", killRV: "10", progress: "10"}, "")
	if first == nil {
		t.Fatal("no channel to wait on before any kill was registered")
	}
	c := cl.register("uid-web", Kill{Pod: "web-a", RV: "10", Controller: &kube.OwnerRef{}}, false)
	select {
	case <-first:
	default:
		t.Error("a kill registered, and the channel asked for before it still open")
	}
	_, _, _, a := cl.replacementOf(c, "")
	_, _, _, b := cl.replacementOf(c, "")
	if a != b {
		t.Fatal("two follows asking with no change between got two channels: one would miss the change")
	}
	cl.saw(c, newPod{uid: "uid-x", name: "web-x", rv: "11"}, true, false, false, "11")
	for _, ch := range []<-chan struct{}{a, b} {
		select {
		case <-ch:
		default:
			t.Error("a new pod seen, and a waiter's channel still open")
		}
	}
}
