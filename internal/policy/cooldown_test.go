package policy

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/testkit"

	"github.com/macaque-chaos/macaque/internal/kube"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
)

// cooldownServer is fakeapi holding macaque's cooldown ConfigMap in testNS with data, and a
// cooldown of MACAQUE_COOLDOWN=1h kept there.
func cooldownServer(t *testing.T, data map[string]string) (*fakeapi.Server, *Cooldown) {
	return cooldownOf(t, data, time.Hour)
}

// cooldownOf is cooldownServer with MACAQUE_COOLDOWN=period.
func cooldownOf(t *testing.T, data map[string]string, period time.Duration) (*fakeapi.Server, *Cooldown) {
	t.Helper()
	srv := fakeapi.New(t)
	srv.AddConfigMap(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: CooldownConfigMap}, Data: data})
	api, err := kube.NewClient(&rest.Config{Host: srv.URL, QPS: -1})
	if err != nil {
		t.Fatal(err)
	}
	return srv, NewCooldown(api, testNS, period)
}

func TestCooldownCheck(t *testing.T) {
	c := NewCooldown(nil, "", time.Hour)
	web := &kube.OwnerRef{Kind: "Deployment", Name: "web"}
	key := CooldownKey("shop", *web)
	if key != "shop.Deployment.web" {
		t.Fatalf("key %q", key)
	}
	h := hits{key: {at: tick0}}
	tests := []struct {
		name string
		at   time.Time
		want string
	}{
		{"just hit", tick0, "Deployment/web lost a pod 0s ago: cooling down until 2026-03-29T10:00:00Z (MACAQUE_COOLDOWN=1h0m0s)"},
		{"a second before it passes", tick0.Add(time.Hour - time.Second), "Deployment/web lost a pod 59m59s ago: cooling down until 2026-03-29T10:00:00Z"},
		{"the moment it passes", tick0.Add(time.Hour), ""},
		{"long after", tick0.Add(48 * time.Hour), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := c.check(h, "shop", web, tt.at)
			if (tt.want == "") != (got == "") || !strings.HasPrefix(got, tt.want) {
				t.Errorf("check at %v = %q, want %q", tt.at, got, tt.want)
			}
		})
	}
	if got := c.check(h, "shop", &kube.OwnerRef{Kind: "Deployment", Name: "api"}, tick0); got != "" {
		t.Errorf("a workload never hit: %q, want none", got)
	}
	if got := c.check(h, "cart", web, tick0); got != "" {
		t.Errorf("a workload of the same name in another namespace: %q, want none", got)
	}
	if got := c.check(h, "shop", nil, tick0); got != "" {
		t.Errorf("a bare pod: %q, want none", got)
	}
	var off *Cooldown
	if got := off.check(h, "shop", web, tick0); got != "" {
		t.Errorf("no cooldown: %q, want none", got)
	}
}

func TestCooldownRecordAndLoad(t *testing.T) {
	old := tick0.Add(-2 * time.Hour).Format(time.RFC3339)
	recent := tick0.Add(-10 * time.Minute).Format(time.RFC3339)
	srv, c := cooldownServer(t, map[string]string{
		"shop.Deployment.old": old, "shop.Deployment.recent": recent, "shop.Deployment.edited": "yesterday",
	})
	h, err := c.load(testkit.Ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 || !h["shop.Deployment.recent"].at.Equal(tick0.Add(-10*time.Minute)) {
		t.Errorf("loaded %v, want the two entries that parse", h)
	}
	before := len(srv.Requests())
	if err := c.Record(testkit.Ctx(t), []string{"shop.Deployment.web", "cart.StatefulSet.db"}, tick0); err != nil {
		t.Fatal(err)
	}
	if sent := srv.Requests()[before:]; len(sent) != 2 || sent[0].Method != http.MethodGet || sent[1].Method != http.MethodPut {
		t.Errorf("the write sent %+v, want one GET and one PUT", sent)
	}
	got := srv.ConfigMap(testNS, CooldownConfigMap).Data
	want := map[string]string{"shop.Deployment.web": "2026-03-29T09:00:00Z", "cart.StatefulSet.db": "2026-03-29T09:00:00Z", "shop.Deployment.recent": recent}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("state after the write %v, want %v: the new hits, and only the entries still cooling down", got, want)
	}
	// A new cooldown (a restart of macaque) reads what the last one wrote.
	_, again := cooldownServer(t, nil)
	again.api = c.api
	h, err = again.load(testkit.Ctx(t))
	if err != nil || again.check(h, "shop", &kube.OwnerRef{Kind: "Deployment", Name: "web"}, tick0.Add(time.Minute)) == "" {
		t.Errorf("after a restart: %v, %v; want web still cooling down", h, err)
	}
}

func TestCooldownRecordRetriesAConflictOnce(t *testing.T) {
	for _, conflicts := range []int{1, 2} {
		t.Run(fmt.Sprint(conflicts), func(t *testing.T) {
			srv, c := cooldownServer(t, nil)
			n := 0
			srv.Fail = func(r fakeapi.Request) *metav1.Status {
				if r.Method == http.MethodPut && n < conflicts {
					n++
					// Another writer got there first: the state moved on under us.
					srv.AddConfigMap(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: CooldownConfigMap},
						Data: map[string]string{"shop.Deployment.api": tick0.Format(time.RFC3339)}})
				}
				return nil
			}
			err := c.Record(testkit.Ctx(t), []string{"shop.Deployment.web"}, tick0)
			data := srv.ConfigMap(testNS, CooldownConfigMap).Data
			if conflicts == 1 && (err != nil || data["shop.Deployment.web"] == "" || data["shop.Deployment.api"] == "") {
				t.Errorf("after one conflict: %v, state %v; want both hits kept", err, data)
			}
			if conflicts == 2 && (err == nil || !strings.Contains(err.Error(), "the object has been modified")) {
				t.Errorf("after two conflicts: %v, want the conflict reported", err)
			}
		})
	}
}

func TestCooldownPruneIsBounded(t *testing.T) {
	c := NewCooldown(nil, "", time.Hour)
	h := hits{}
	for i := range maxCooldownEntries + 10 {
		h[fmt.Sprintf("shop.Deployment.w%d", i)] = entry{at: tick0.Add(-time.Duration(i) * time.Second)}
	}
	out := c.prune(h, tick0)
	if len(out) != maxCooldownEntries {
		t.Fatalf("%d entries kept, want %d", len(out), maxCooldownEntries)
	}
	if _, ok := out["shop.Deployment.w0"]; !ok {
		t.Error("the latest hit was dropped; the oldest must go first")
	}
	if _, ok := out[fmt.Sprintf("shop.Deployment.w%d", maxCooldownEntries)]; ok {
		t.Error("an oldest hit was kept past the bound")
	}
}

func TestCooldownLoadFailsClosed(t *testing.T) {
	srv, c := cooldownServer(t, nil)
	srv.Fail = func(fakeapi.Request) *metav1.Status { return fakeapi.InternalError("etcdserver: leader changed") }
	now := func() time.Time { return tick0 }
	if _, err := c.ForTick(testkit.Ctx(t), now); err == nil || !strings.Contains(err.Error(), "read the cooldown state") {
		t.Errorf("ForTick = %v, want an error: a tick must not kill on a state it could not read", err)
	}
	var off *Cooldown
	if rule, err := off.ForTick(testkit.Ctx(t), now); err != nil || rule != nil {
		t.Errorf("no cooldown: %v, %v; want no rule", rule, err)
	}
	if err := off.Record(testkit.Ctx(t), []string{"x"}, tick0); err != nil {
		t.Errorf("no cooldown records nothing: %v", err)
	}
}

// TestCooldownRecordsLongNames: the state records a workload of any valid name, and reads it
// back; one whose key would be too long costs no other its entry.
func TestCooldownRecordsLongNames(t *testing.T) {
	long := kube.OwnerRef{Kind: "Deployment", Name: longName}
	web := kube.OwnerRef{Kind: "Deployment", Name: "web"}
	srv, c := cooldownServer(t, nil)
	if err := c.Record(testkit.Ctx(t), []string{CooldownKey(testNS, long), CooldownKey(testNS, web)}, tick0); err != nil {
		t.Fatalf("record: %v", err)
	}
	h, err := c.load(testkit.Ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, top := range []kube.OwnerRef{long, web} {
		if why := c.check(h, testNS, &top, tick0.Add(time.Minute)); !strings.Contains(why, "lost a pod 1m0s ago") {
			t.Errorf("%.30s...: %q, want it cooling down; state %v", top.Name, why, srv.ConfigMap(testNS, CooldownConfigMap).Data)
		}
	}
}

// TestCooldownDropsEntriesNoConfigMapHolds: an entry of the stored state that the API server
// would refuse in a write (a key edited by hand, or from before a tighter validation) is
// dropped, never written back to sink the others with it.
func TestCooldownDropsEntriesNoConfigMapHolds(t *testing.T) {
	recent := tick0.Add(-time.Minute).Format(time.RFC3339)
	garbage := "shop.Deployment." + longName // today's key of the long name: 255 characters
	srv, c := cooldownServer(t, map[string]string{garbage: recent, "shop.Deployment.api": recent, "shop.Deployment.bad-value": "soon"})
	if err := c.Record(testkit.Ctx(t), []string{"shop.Deployment.web"}, tick0); err != nil {
		t.Fatalf("record: %v", err)
	}
	got := srv.ConfigMap(testNS, CooldownConfigMap).Data
	want := map[string]string{"shop.Deployment.api": recent, "shop.Deployment.web": tick0.Format(time.RFC3339)}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("state %v, want %v", got, want)
	}
	if err := c.Record(testkit.Ctx(t), []string{"shop.Deployment.db", garbage}, tick0); err == nil || !strings.Contains(err.Error(), "not a valid ConfigMap key") {
		t.Errorf("record of a key no ConfigMap holds: %v, want an error saying so", err)
	}
	if got := srv.ConfigMap(testNS, CooldownConfigMap).Data; got["shop.Deployment.db"] == "" {
		t.Errorf("state %v: the valid key of the same write was not recorded", got)
	}
}

// TestCooldownKeys: a key is a valid ConfigMap key for any valid namespace, kind and name, is
// the same for the same workload and differs between workloads; a short one is today's
// "namespace.Kind.name", so that the state written before still reads.
func TestCooldownKeys(t *testing.T) {
	fits := strings.Repeat("a", 253-len("shop.Deployment."))
	tests := []struct {
		name      string
		namespace string
		top       kube.OwnerRef
		want      string // the key; with hashed, what it starts with
		hashed    bool
	}{
		{name: "short", namespace: "shop", top: kube.OwnerRef{Kind: "Deployment", Name: "web"}, want: "shop.Deployment.web"},
		{name: "a dotted name", namespace: "shop", top: kube.OwnerRef{Kind: "StatefulSet", Name: "db.v2"}, want: "shop.StatefulSet.db.v2"},
		{name: "just fits", namespace: "shop", top: kube.OwnerRef{Kind: "Deployment", Name: fits}, want: "shop.Deployment." + fits},
		{name: "a character past", namespace: "shop", top: kube.OwnerRef{Kind: "Deployment", Name: fits + "b"}, want: "shop.Deployment." + fits[:253-17-16], hashed: true},
		{name: "the 239 characters seen", namespace: "shop", top: kube.OwnerRef{Kind: "Deployment", Name: longName}, want: "shop.Deployment.aaaa", hashed: true},
		{name: "every piece at its longest", namespace: strings.Repeat("n", 63), top: kube.OwnerRef{Kind: "Rollout" + strings.Repeat("x", 100), Name: strings.Repeat("a.b-", 63) + "a"},
			want: strings.Repeat("n", 63) + ".Rollout", hashed: true},
		{name: "a name of characters no key holds", namespace: "shop", top: kube.OwnerRef{Kind: "Widget", Name: "café:1"}, want: "shop.Widget.caf", hashed: true},
		{name: "empty pieces", hashed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CooldownKey(tt.namespace, tt.top)
			if errs := validation.IsConfigMapKey(got); len(errs) > 0 {
				t.Fatalf("key %q (%d characters) is no ConfigMap key: %v", got, len(got), errs)
			}
			if !tt.hashed && got != tt.want {
				t.Errorf("key %q, want %q", got, tt.want)
			}
			if tt.hashed && (!strings.HasPrefix(got, tt.want) || !hashSuffix.MatchString(got)) {
				t.Errorf("key %q, want one starting %q and ending in a hash", got, tt.want)
			}
			if again := CooldownKey(tt.namespace, tt.top); again != got {
				t.Errorf("key %q, then %q: not the same for the same workload", got, again)
			}
		})
	}
	// Names alike but past the cut: the hash tells them apart.
	a, b := CooldownKey("shop", kube.OwnerRef{Kind: "Deployment", Name: longName + "-a"}), CooldownKey("shop", kube.OwnerRef{Kind: "Deployment", Name: longName + "-b"})
	if a == b {
		t.Errorf("two workloads share the key %q", a)
	}
	// Random valid names, many of them long: every key valid, and no two workloads' alike.
	rng := rand.New(rand.NewPCG(18, 8))
	seen := map[string]string{}
	for range 2000 {
		ns := dnsLabel(rng, 1+rng.IntN(63))
		top := kube.OwnerRef{Kind: "K" + dnsLabel(rng, rng.IntN(60)), Name: dnsSubdomain(rng, 1+rng.IntN(253))}
		key, workload := CooldownKey(ns, top), ns+"/"+top.Kind+"/"+top.Name
		if errs := validation.IsConfigMapKey(key); len(errs) > 0 {
			t.Fatalf("%s: key %q is no ConfigMap key: %v", workload, key, errs)
		}
		if other, ok := seen[key]; ok && other != workload {
			t.Fatalf("%s and %s share the key %q", workload, other, key)
		}
		seen[key] = workload
	}
}

// dnsLabel is a random DNS label of n characters (n ≤ 63), as a namespace is.
func dnsLabel(rng *rand.Rand, n int) string {
	const alnum, inner = "abcdefghijklmnopqrstuvwxyz0123456789", "abcdefghijklmnopqrstuvwxyz0123456789-"
	b := make([]byte, n)
	for i := range b {
		set := inner
		if i == 0 || i == n-1 {
			set = alnum
		}
		b[i] = set[rng.IntN(len(set))]
	}
	return string(b)
}

// dnsSubdomain is a random DNS subdomain of about n characters (at most 253), as a workload's
// name is: labels joined by dots.
func dnsSubdomain(rng *rand.Rand, n int) string {
	var labels []string
	for left := n; left > 0; {
		l := min(left, 1+rng.IntN(63))
		labels = append(labels, dnsLabel(rng, l))
		left -= l + 1
	}
	return strings.Join(labels, ".")
}

// hashSuffix is how a cut cooldown key ends.
var hashSuffix = regexp.MustCompile(`\.[0-9a-f]{16}$`)

// TestConfigMapKeyBytes: exactly the bytes a ConfigMap key may hold, [-._a-zA-Z0-9], pass, each
// byte at the edge of a range included ('/' before '0', ':' after '9', '@', '[', '`', '{').
func TestConfigMapKeyBytes(t *testing.T) {
	valid := regexp.MustCompile(`^[-._a-zA-Z0-9]$`)
	for c := range 256 {
		b := byte(c)
		if got, want := isConfigMapKeyByte(b), valid.Match([]byte{b}); got != want {
			t.Errorf("isConfigMapKeyByte(%q) = %v, want %v", b, got, want)
		}
	}
}

// TestCooldownEntriesOfAnnotatedWorkloads: an entry written with a period of its own (an
// annotation's) reads back, is kept for the longer of it and MACAQUE_COOLDOWN, and an entry a
// hand or another version wrote badly is dropped.
func TestCooldownEntriesOfAnnotatedWorkloads(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  entry
		ok    bool
	}{
		{"2026-03-29T09:00:00Z", entry{at: tick0}, true},
		{"2026-03-29T09:00:00Z 3h0m0s", entry{at: tick0, period: 3 * time.Hour}, true},
		{"2026-03-29T09:00:00Z soon", entry{}, false},
		{"2026-03-29T09:00:00Z -1h", entry{}, false},
		{"yesterday 1h", entry{}, false},
	} {
		got, ok := parseEntry(tt.value)
		if ok != tt.ok || !got.at.Equal(tt.want.at) || got.period != tt.want.period {
			t.Errorf("parseEntry(%q) = %+v, %v; want %+v, %v", tt.value, got, ok, tt.want, tt.ok)
		}
		if ok && got.String() != tt.value {
			t.Errorf("entry %+v writes %q, want %q back", got, got.String(), tt.value)
		}
	}
	c := NewCooldown(nil, "", time.Hour)
	h := hits{
		"shop.Deployment.long":  {at: tick0.Add(-2 * time.Hour), period: 3 * time.Hour},
		"shop.Deployment.short": {at: tick0.Add(-30 * time.Minute), period: 10 * time.Minute},
		"shop.Deployment.over":  {at: tick0.Add(-4 * time.Hour), period: 3 * time.Hour},
		"shop.Deployment.plain": {at: tick0.Add(-2 * time.Hour)},
	}
	got := c.prune(h, tick0)
	want := map[string]string{"shop.Deployment.long": "2026-03-29T07:00:00Z 3h0m0s", "shop.Deployment.short": "2026-03-29T08:30:00Z 10m0s"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("pruned to %v, want %v: each kept for the longer of its period and MACAQUE_COOLDOWN", got, want)
	}
	hs := []Hit{{Key: "shop.Deployment.web", Period: 2 * time.Hour}, {Key: "shop.Deployment.none", Period: 0}, {Key: "shop.Deployment.api", Period: time.Hour}}
	srv, c := cooldownServer(t, nil)
	if err := c.RecordHits(testkit.Ctx(t), hs, tick0); err != nil {
		t.Fatal(err)
	}
	if got := srv.ConfigMap(testNS, CooldownConfigMap).Data; fmt.Sprint(got) != "map[shop.Deployment.api:2026-03-29T09:00:00Z shop.Deployment.web:2026-03-29T09:00:00Z 2h0m0s]" {
		t.Errorf("recorded %v, want web with its own period, api with MACAQUE_COOLDOWN's, and no entry of a period of 0", got)
	}
	before := len(srv.Requests())
	if err := c.RecordHits(testkit.Ctx(t), []Hit{{Key: "shop.Deployment.none"}}, tick0); err != nil || len(srv.Requests()) != before {
		t.Errorf("a hit of period 0 alone: %v, %d requests; want nothing written", err, len(srv.Requests())-before)
	}
}

// TestCooldownAnnotationRule checks the rule with MACAQUE_COOLDOWN=0: a workload's annotation
// alone asks for a cooldown, a bad one passes the pick over, and the state is read once in a
// tick, on the first annotated workload met, whether that read works or fails.
func TestCooldownAnnotationRule(t *testing.T) {
	web := &kube.OwnerRef{Kind: "Deployment", Name: "web", UID: "u-web"}
	hitAgo := tick0.Add(-30 * time.Minute).Format(time.RFC3339)
	annotated := func(v string) map[string]string { return map[string]string{CooldownAnnotation: v} }
	tests := []struct {
		name  string
		top   *kube.OwnerRef
		notes map[string]string
		want  string // the Why of the pass, a prefix; "" for let through
		reads int    // ConfigMap reads the check made
	}{
		{name: "a bare pod", want: ""},
		{name: "no annotation, no MACAQUE_COOLDOWN", top: web, want: ""},
		{name: "an annotation of 0", top: web, notes: annotated("0"), want: ""},
		{name: "a longer annotation holds", top: web, notes: annotated("2h"), reads: 1,
			want: "Deployment/web lost a pod 30m0s ago: cooling down until 2026-03-29T10:30:00Z (chaos.macaque.dev/cooldown=2h on Deployment/web)"},
		{name: "a shorter annotation has passed", top: web, notes: annotated(" 10m "), reads: 1, want: ""},
		{name: "not a duration", top: web, notes: annotated("soon"),
			want: `bad chaos.macaque.dev/cooldown annotation on Deployment/web: "soon" is not a duration of whole seconds`},
		{name: "negative", top: web, notes: annotated("-1h"), want: `bad chaos.macaque.dev/cooldown annotation on Deployment/web: "-1h"`},
		{name: "part of a second", top: web, notes: annotated("90500ms"), want: `bad chaos.macaque.dev/cooldown annotation on Deployment/web: "90500ms"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := cooldownOf(t, map[string]string{CooldownKey(testNS, *web): hitAgo}, 0)
			rule, err := c.ForTick(testkit.Ctx(t), func() time.Time { return tick0 })
			if err != nil {
				t.Fatal(err)
			}
			p := &Pick{Name: testNS + "/web-1", Pod: kube.Pod{Namespace: testNS}, Top: tt.top, TopAnnotations: tt.notes}
			pass, err := rule.Check(testkit.Ctx(t), p)
			if err != nil || (pass == nil) != (tt.want == "") || (pass != nil && (!strings.HasPrefix(pass.Why, tt.want) || pass.Blame != tt.top)) {
				t.Errorf("Check = %+v, %v; want passed over for %q, blaming %v", pass, err, tt.want, tt.top)
			}
			if got := configMapReads(srv); got != tt.reads {
				t.Errorf("%d reads of the state, want %d", got, tt.reads)
			}
		})
	}
	t.Run("one read a tick", func(t *testing.T) {
		srv, c := cooldownOf(t, map[string]string{CooldownKey(testNS, *web): hitAgo}, 0)
		rule, _ := c.ForTick(testkit.Ctx(t), func() time.Time { return tick0 })
		for i := range 3 {
			p := &Pick{Pod: kube.Pod{Namespace: testNS}, Top: &kube.OwnerRef{Kind: "Deployment", Name: fmt.Sprint("app", i)}, TopAnnotations: annotated("1h")}
			if pass, err := rule.Check(testkit.Ctx(t), p); pass != nil || err != nil {
				t.Fatalf("a workload never hit: %+v, %v", pass, err)
			}
		}
		if got := configMapReads(srv); got != 1 {
			t.Errorf("%d reads of the state for three annotated workloads in a tick, want 1", got)
		}
	})
	t.Run("a failed read is not tried again in the tick", func(t *testing.T) {
		srv, c := cooldownOf(t, nil, 0)
		srv.Fail = func(fakeapi.Request) *metav1.Status { return fakeapi.InternalError("etcdserver: leader changed") }
		rule, err := c.ForTick(testkit.Ctx(t), func() time.Time { return tick0 })
		if err != nil {
			t.Fatalf("ForTick with MACAQUE_COOLDOWN=0 = %v, want no read before an annotated workload", err)
		}
		for range 2 {
			pass, err := rule.Check(testkit.Ctx(t), &Pick{Pod: kube.Pod{Namespace: testNS}, Top: web, TopAnnotations: annotated("1h")})
			if err != nil || pass == nil || !strings.HasPrefix(pass.Why, "chaos.macaque.dev/cooldown=1h on Deployment/web cannot be honoured: read the cooldown state") {
				t.Errorf("Check on an unreadable state = %+v, %v; want passed over, saying why", pass, err)
			}
		}
		if got := configMapReads(srv); got != 1 {
			t.Errorf("%d reads of the state, want 1: a failed read is not tried again in the same tick", got)
		}
	})
}

// configMapReads counts srv's GETs of the cooldown ConfigMap.
func configMapReads(srv *fakeapi.Server) int {
	n := 0
	for _, r := range srv.Requests() {
		if r.Method == http.MethodGet && strings.HasSuffix(r.Path, "/configmaps/"+CooldownConfigMap) {
			n++
		}
	}
	return n
}
