// Package telemetrytest reads what macaque's HTTP handler serves, for the tests of telemetry and
// of the goroutines that record with it: a scrape of /metrics parsed into its samples, and the
// probes' answers. It takes an http.Handler, not telemetry's types, so that telemetry's own tests
// can use it without an import cycle.
package telemetrytest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Scrape GETs /metrics from h and returns every sample by series, as `name{label="value",...}`
// with the labels sorted; a histogram gives name_count, name_sum and name_bucket{...,le="x"}.
func Scrape(t testing.TB, h http.Handler) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	out := map[string]float64{}
	for name, f := range families {
		for _, s := range f.GetMetric() {
			samples(out, name, f.GetType(), s)
		}
	}
	return out
}

// samples adds to out the samples of s, a series of the family name of type typ.
func samples(out map[string]float64, name string, typ dto.MetricType, s *dto.Metric) {
	labels := []string{}
	for _, l := range s.GetLabel() {
		labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	key := func(suffix string, extra ...string) string {
		all := append(slices.Clone(labels), extra...)
		slices.Sort(all)
		if len(all) == 0 {
			return name + suffix
		}
		return name + suffix + "{" + strings.Join(all, ",") + "}"
	}
	switch typ {
	case dto.MetricType_COUNTER:
		out[key("")] = s.GetCounter().GetValue()
	case dto.MetricType_GAUGE:
		out[key("")] = s.GetGauge().GetValue()
	case dto.MetricType_HISTOGRAM:
		h := s.GetHistogram()
		out[key("_count")] = float64(h.GetSampleCount())
		out[key("_sum")] = h.GetSampleSum()
		for _, b := range h.GetBucket() {
			out[key("_bucket", fmt.Sprintf("le=%q", fmt.Sprint(b.GetUpperBound())))] = float64(b.GetCumulativeCount())
		}
	}
}

// WantSeries checks that got has every series of want with its value.
func WantSeries(t testing.TB, got, want map[string]float64) {
	t.Helper()
	for series, v := range want {
		g, ok := got[series]
		if !ok {
			t.Errorf("no series %s; have %v", series, MacaqueSeries(got))
			continue
		}
		if g != v {
			t.Errorf("%s = %v, want %v", series, g, v)
		}
	}
}

// MacaqueSeries lists macaque's own series of a scrape, to explain a failure.
func MacaqueSeries(got map[string]float64) []string {
	var out []string
	for s, v := range got {
		if strings.HasPrefix(s, "macaque_") && !strings.Contains(s, "_bucket") {
			out = append(out, fmt.Sprintf("%s=%v", s, v))
		}
	}
	slices.Sort(out)
	return out
}

// Probe GETs path from h and returns the status and the body.
func Probe(t testing.TB, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

// WantProbe checks that path answers code with a body containing every one of want.
func WantProbe(t testing.TB, h http.Handler, path string, code int, want ...string) {
	t.Helper()
	got, body := Probe(t, h, path)
	if got != code {
		t.Errorf("GET %s = %d %q, want %d", path, got, body, code)
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("GET %s = %d %q, want it to say %q", path, got, body, w)
		}
	}
}
