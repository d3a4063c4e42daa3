package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/e2e/cluster"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// httpAddr is where the daemon serves /metrics and the probes, from its log line saying so.
func (d *daemon) httpAddr(t *testing.T) string {
	t.Helper()
	addr := ""
	cluster.Eventually(t, 30*time.Second, "macaque's line saying where it serves metrics and probes", func(context.Context) error {
		for _, line := range d.Logs() {
			var l struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "serving metrics and probes" {
				addr = l.Addr
				return nil
			}
		}
		if !d.running() {
			t.Fatalf("macaque exited (%v) before serving", d.State())
		}
		return fmt.Errorf("no such line among %d", len(d.Logs()))
	})
	return addr
}

// get GETs path from the daemon's HTTP server and returns the status and the body.
func get(ctx context.Context, addr, path string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, "", err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res.StatusCode, string(body), err
}

// scrape reads /metrics as Prometheus would and returns macaque's samples by series
// (`name{label="value",...}`, labels in the exposition's order), counters and gauges only.
func scrape(ctx context.Context, addr string) (map[string]float64, error) {
	code, body, err := get(ctx, addr, "/metrics")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %d %s", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("parse /metrics: %w", err)
	}
	out := map[string]float64{}
	for name, f := range families {
		if !strings.HasPrefix(name, "macaque_") {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			}
		}
	}
	return out, nil
}

// TestProbesAndMetricsFollowRBAC runs macaque with the shipped manifest's RBAC and deletes its
// RoleBinding at run time: /readyz turns failing, saying RBAC forbids the list, and passes again
// once the RoleBinding is restored, while /healthz stays OK throughout (macaque is alive, only
// not allowed); /metrics counts the kills and the forbidden ticks as they happen.
func TestProbesAndMetricsFollowRBAC(t *testing.T) {
	ns, kubeconfig := deploy(t)
	createDeployment(t, ns, "web", 3)
	waitReady(t, ns, "web", 3)
	d := startMacaque(t, kubeconfig, nil, "MACAQUE_SELECTOR=app=web")
	addr := d.httpAddr(t)
	killed := fmt.Sprintf(`macaque_kills_total{namespace=%q,outcome="killed"}`, ns)
	forbidden := fmt.Sprintf(`macaque_kills_total{namespace=%q,outcome="forbidden"}`, ns)

	// healthy checks /healthz at every poll of the waits below: it must never fail.
	healthy := func(ctx context.Context) error {
		code, body, err := get(ctx, addr, "/healthz")
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			t.Fatalf("/healthz = %d %q while macaque runs", code, body)
		}
		return nil
	}
	// waitReadyz waits until /readyz answers code with a body containing say.
	waitReadyz := func(code int, say string) {
		t.Helper()
		last := "no answer yet"
		cluster.Eventually(t, 60*time.Second, fmt.Sprintf("/readyz to answer %d saying %q", code, say), func(ctx context.Context) error {
			got, body, err := get(ctx, addr, "/readyz")
			if err != nil {
				return fmt.Errorf("%w (last answer: %s)", err, last)
			}
			last = fmt.Sprintf("%d %q", got, body)
			if err := healthy(ctx); err != nil {
				return fmt.Errorf("%w (last /readyz: %s)", err, last)
			}
			if got != code || !strings.Contains(body, say) {
				return errors.New(last)
			}
			return nil
		})
	}
	// waitMetric waits until series is at least atLeast and returns all of macaque's samples.
	waitMetric := func(series string, atLeast float64) map[string]float64 {
		t.Helper()
		var got map[string]float64
		cluster.Eventually(t, 60*time.Second, fmt.Sprintf("%s >= %v", series, atLeast), func(ctx context.Context) error {
			var err error
			if got, err = scrape(ctx, addr); err != nil {
				return err
			}
			if got[series] < atLeast {
				return fmt.Errorf("%s = %v; ticks %v", series, got[series], got["macaque_ticks_total"])
			}
			return nil
		})
		return got
	}

	waitReadyz(http.StatusOK, "ok")
	before := waitMetric(killed, 2)
	if before["macaque_ticks_total"] < before[killed] || before["macaque_candidates"] != 3 || before["macaque_last_successful_tick_timestamp_seconds"] == 0 {
		t.Errorf("after %v kills: ticks %v, candidates %v, last success %v; want ticks >= kills, 3 candidates, a last success",
			before[killed], before["macaque_ticks_total"], before["macaque_candidates"], before["macaque_last_successful_tick_timestamp_seconds"])
	}
	if next, last := before["macaque_next_tick_timestamp_seconds"], before["macaque_last_tick_timestamp_seconds"]; next <= last || last == 0 {
		t.Errorf("next tick at %v, last at %v: want the next after the last", next, last)
	}
	checkLastKill(t, d, before[fmt.Sprintf(`macaque_last_kill_timestamp_seconds{namespace=%q}`, ns)])

	restore := unbind(t, kubeconfig, ns)
	waitReadyz(http.StatusServiceUnavailable, `cannot list resource "pods"`)
	during := waitMetric(forbidden, 2)
	if during["macaque_last_tick_timestamp_seconds"] <= during["macaque_last_successful_tick_timestamp_seconds"] {
		t.Errorf("last tick at %v, last success at %v, with every tick forbidden: want the last tick later",
			during["macaque_last_tick_timestamp_seconds"], during["macaque_last_successful_tick_timestamp_seconds"])
	}

	restore()
	waitReadyz(http.StatusOK, "ok")
	after := waitMetric(killed, during[killed]+1)
	if after["macaque_ticks_total"] <= during["macaque_ticks_total"] || after["macaque_last_successful_tick_timestamp_seconds"] <= during["macaque_last_successful_tick_timestamp_seconds"] {
		t.Errorf("after the restore: ticks %v (were %v), last success %v (was %v); want both to move",
			after["macaque_ticks_total"], during["macaque_ticks_total"], after["macaque_last_successful_tick_timestamp_seconds"], during["macaque_last_successful_tick_timestamp_seconds"])
	}
	reported := 0
	for _, l := range d.tickLines() {
		if l.Outcome == "killed" {
			reported++
		}
	}
	d.stop(t)
	if float64(reported) < after[killed] {
		t.Errorf("/metrics counted %v kills, the log reports %d", after[killed], reported)
	}
	if _, _, err := get(t.Context(), addr, "/healthz"); err == nil {
		t.Errorf("%s still serves after macaque stopped", addr)
	}
}

// checkLastKill checks the dashboard's kill marker, macaque_last_kill_timestamp_seconds as
// scraped (at): it is the time the log gives one of the kills' deletion, to the millisecond.
func checkLastKill(t *testing.T, d *daemon, at float64) {
	t.Helper()
	var seen []string
	for _, l := range d.tickLines() {
		var r struct {
			Deleted time.Time `json:"deleted"`
		}
		if l.Outcome != "killed" || json.Unmarshal([]byte(l.raw), &r) != nil || r.Deleted.IsZero() {
			continue
		}
		if math.Abs(float64(r.Deleted.UnixNano())/1e9-at) < 1e-3 {
			return
		}
		seen = append(seen, r.Deleted.Format(time.RFC3339Nano))
	}
	t.Errorf("macaque_last_kill_timestamp_seconds = %v (%s), the deletion time of no kill logged: %v",
		at, time.Unix(0, int64(at*1e9)).UTC().Format(time.RFC3339Nano), seen)
}
