package alerts

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Alert is one firing alert the matchers select.
type Alert struct {
	Name string // its alertname label
	// Namespace is its namespace label: the alert holds that namespace's pods. Empty: it holds
	// every namespace.
	Namespace string
	StartsAt  time.Time
}

// String names the alert as reports do: HighErrorRate (namespace shop).
func (a Alert) String() string {
	name := cmp.Or(a.Name, "(no alertname)")
	if a.Namespace == "" {
		return name
	}
	return name + " (namespace " + a.Namespace + ")"
}

// DefaultTimeout bounds one question to Alertmanager, well within a tick's time for picking.
const DefaultTimeout = 5 * time.Second

// maxAnswer bounds the answer read: far more than any Alertmanager's active alerts, and it
// keeps a proxy that streams without end from holding the tick.
const maxAnswer = 64 << 20

// Client asks one Alertmanager, through its v2 API, which alerts block kills.
type Client struct {
	base     *url.URL // Alertmanager's root, as MACAQUE_ALERTMANAGER_URL names it (a route prefix included)
	matchers Matchers
	http     *http.Client
	now      func() time.Time
}

// NewClient asks the Alertmanager at base for the alerts matchers select, each question bounded
// by timeout. httpClient nil is a client of its own; now is the clock that tells a resolved
// alert from a firing one.
func NewClient(base *url.URL, matchers Matchers, timeout time.Duration, httpClient *http.Client, now func() time.Time) *Client {
	c := &http.Client{Timeout: timeout}
	if httpClient != nil {
		clone := *httpClient
		clone.Timeout = timeout
		c = &clone
	}
	return &Client{base: base, matchers: matchers, http: c, now: now}
}

// ParseURL reads Alertmanager's root URL: http or https, a host, and a path when it is served
// under a route prefix (--web.route-prefix); no query nor fragment, which the API's path would
// follow.
func ParseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("%q is not an http(s) URL of Alertmanager, such as http://alertmanager.monitoring:9093", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q has a query or a fragment: want Alertmanager's root URL, such as http://alertmanager.monitoring:9093", raw)
	}
	return u, nil
}

// Where names the Alertmanager asked, without any password in its URL.
func (c *Client) Where() string {
	return c.base.Redacted()
}

// Matchers are the matchers that select the alerts that block.
func (c *Client) Matchers() Matchers {
	return c.matchers
}

// gettableAlert is the part of an alert of GET /api/v2/alerts that the gate reads.
type gettableAlert struct {
	Labels   map[string]string `json:"labels"`
	StartsAt time.Time         `json:"startsAt"`
	EndsAt   time.Time         `json:"endsAt"`
	Status   struct {
		State       string   `json:"state"`
		SilencedBy  []string `json:"silencedBy"`
		InhibitedBy []string `json:"inhibitedBy"`
	} `json:"status"`
}

// StatusError is an answer of Alertmanager (or whatever answered at its URL) that is not 2xx.
type StatusError struct {
	Code int
	Body string // its start, for the report
}

// Error implements error.
func (e *StatusError) Error() string {
	status := fmt.Sprintf("HTTP %d %s", e.Code, http.StatusText(e.Code))
	if e.Body == "" {
		return status
	}
	return status + ": " + e.Body
}

// ErrNotAlerts is a 2xx answer that is not a JSON list of alerts: not Alertmanager's v2 API.
var ErrNotAlerts = errors.New("the answer is not a JSON list of alerts")

// Firing is the alerts firing now that the matchers select, neither silenced nor inhibited,
// sorted by namespace and name. The query asks Alertmanager to leave out the silenced and the
// inhibited, and each alert's status is read again, so that a proxy or a version that ignores
// the query cannot let them through. The matchers are applied here rather than sent as the
// API's filter=, so that they mean the same whatever Alertmanager's version (0.25's API reads
// only the classic syntax).
func (c *Client) Firing(ctx context.Context) ([]Alert, error) {
	resp, err := c.get(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	var out []Alert
	err = eachAlert(io.LimitReader(resp.Body, maxAnswer), func(a gettableAlert) {
		if c.blocks(a) {
			out = append(out, Alert{Name: a.Labels["alertname"], Namespace: a.Labels["namespace"], StartsAt: a.StartsAt})
		}
	})
	if err != nil {
		return nil, fmt.Errorf("read the alerts of %s: %w", c.Where(), err)
	}
	// sort.Slice, not slices.SortFunc: a generic sort of Alerts would cost the binary 8 KB more.
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name), a.StartsAt.Compare(b.StartsAt)) < 0
	})
	return out, nil
}

// get sends the query and returns the answer when it is 2xx.
func (c *Client) get(ctx context.Context) (*http.Response, error) {
	u := c.base.JoinPath("api", "v2", "alerts")
	u.RawQuery = url.Values{"active": {"true"}, "silenced": {"false"}, "inhibited": {"false"}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("ask %s for its alerts: %w", c.Where(), err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask %s for its alerts: %w", c.Where(), err)
	}
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		_ = resp.Body.Close()
		return nil, fmt.Errorf("ask %s for its alerts: %w", c.Where(), &StatusError{Code: resp.StatusCode, Body: oneLine(string(body))})
	}
	return resp, nil
}

// blocks says whether a is firing now, neither silenced nor inhibited, and selected.
func (c *Client) blocks(a gettableAlert) bool {
	if a.Status.State == "suppressed" || len(a.Status.SilencedBy) > 0 || len(a.Status.InhibitedBy) > 0 {
		return false
	}
	if !a.EndsAt.IsZero() && !c.now().Before(a.EndsAt) {
		return false // resolved: Alertmanager keeps it a while, but it fires no more
	}
	return c.matchers.Match(a.Labels)
}

// eachAlert decodes a JSON list of alerts one at a time, so that a large answer never sits
// whole in memory.
func eachAlert(r io.Reader, each func(gettableAlert)) error {
	dec := json.NewDecoder(r)
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return fmt.Errorf("%w (it does not start with '[')", ErrNotAlerts)
	}
	for dec.More() {
		var a gettableAlert
		if err := dec.Decode(&a); err != nil {
			return fmt.Errorf("%w: %w", ErrNotAlerts, err)
		}
		each(a)
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("%w: %w", ErrNotAlerts, err)
	}
	return nil
}

// oneLine is the start of an answer's body, on one line, for a report.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// Refuses says whether err, from Firing, is an answer that no retry will change: the URL is
// not Alertmanager's v2 API (a 4xx other than a timeout or a rate limit, or a 2xx that is not a
// list of alerts). A failure to reach it, a timeout or a 5xx may pass.
func Refuses(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code/100 == 4 && se.Code != http.StatusRequestTimeout && se.Code != http.StatusTooManyRequests
	}
	return errors.Is(err, ErrNotAlerts)
}
