package main

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/macaque-chaos/macaque/e2e/cluster"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// strategy is one way of listing the candidates: the same Table request macaque sends, paged
// differently. first is the first request's limit and rest the limit of every continue request
// after it; 0 means no limit.
type strategy struct {
	name        string
	first, rest int64
	// noSelectors sends neither selector: the one request that may carry remainingItemCount,
	// which the API server only reports for a list without selectors.
	noSelectors bool
}

// strategies are the pagings issue 12 asks to compare, plus the count a list without selectors
// gives (an upper bound on the candidates, for a strategy that would size its pages by it).
var strategies = []strategy{
	{name: "10 pages of 5,000 (limit=5000)", first: 5000, rest: 5000},
	{name: "2 pages of 25,000 (limit=25000)", first: 25000, rest: 25000},
	{name: "first 500, then the rest (continue, no limit)", first: 500, rest: 0},
	{name: "one unpaged request (no limit)", first: 0, rest: 0},
	{name: "count: limit=1, no selectors", first: 1, noSelectors: true},
}

// listCall is one list request as the client saw it.
type listCall struct {
	took      time.Duration // request sent → last byte of the body read
	wire      int64         // body bytes as sent (gzip)
	raw       int64         // body bytes after gunzip
	rows      int
	remaining *int64 // metadata.remainingItemCount, when the server gave one
	next      string
}

// strategyRound is one listing of the whole namespace by one strategy.
type strategyRound struct {
	calls        []listCall
	apiserverCPU time.Duration // kube-apiserver's CPU over the round, background work included
}

// strategyResult is every round of one strategy at one size.
type strategyResult struct {
	strategy
	rounds []strategyRound
}

// probeStrategies lists the namespace rounds times with each strategy, taking turns so that a
// busy moment of the machine does not fall on one strategy only, as macaque's ServiceAccount
// (so priority and fairness treat the requests as they treat macaque's) straight to the API
// server (no proxy: the time is the API server's and the loopback's).
func probeStrategies(ctx context.Context, c *cluster.Cluster, ns string, rounds int, logger *log.Logger) ([]strategyResult, error) {
	path, err := c.TokenKubeconfig(ctx, ns, "macaque")
	if err != nil {
		return nil, err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	// The transport does not unzip when the request names its own Accept-Encoding, so the bytes
	// counted are the ones the API server sent.
	transport, err := rest.TransportFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("build API transport: %w", err)
	}
	client := &http.Client{Transport: transport, Timeout: time.Minute}
	apiserver, _, err := controlPlanePIDs(c)
	if err != nil {
		return nil, err
	}
	out := make([]strategyResult, len(strategies))
	for i, s := range strategies {
		out[i].strategy = s
	}
	logger.Printf("probing %d list strategies, %d rounds each", len(strategies), rounds)
	for range rounds {
		for i, s := range strategies {
			before, _ := readCPU(apiserver)
			calls, err := listAll(ctx, client, c.Server, ns, s)
			if err != nil {
				return nil, fmt.Errorf("strategy %q: %w", s.name, err)
			}
			after, _ := readCPU(apiserver)
			out[i].rounds = append(out[i].rounds, strategyRound{calls: calls, apiserverCPU: after - before})
		}
	}
	return out, nil
}

// listAll lists the namespace with s, page by page, until the server gives no continue token.
func listAll(ctx context.Context, client *http.Client, server, ns string, s strategy) ([]listCall, error) {
	var calls []listCall
	limit, token := s.first, ""
	for {
		call, err := listOnce(ctx, client, server, ns, s.noSelectors, limit, token)
		if err != nil {
			return calls, err
		}
		calls = append(calls, call)
		if call.next == "" || s.noSelectors {
			return calls, nil
		}
		limit, token = s.rest, call.next
	}
}

// listOnce sends the Table request macaque sends (the bench's selector, status.phase=Running,
// includeObject=None, gzip accepted) with limit (0: none) and the continue token.
func listOnce(ctx context.Context, client *http.Client, server, ns string, noSelectors bool, limit int64, token string) (listCall, error) {
	q := url.Values{"includeObject": {"None"}}
	if !noSelectors {
		q.Set("fieldSelector", "status.phase=Running,metadata.name!=macaque-bench")
		q.Set("labelSelector", scopeSelector)
	}
	if limit > 0 {
		q.Set("limit", strconv.FormatInt(limit, 10))
	}
	if token != "" {
		q.Set("continue", token)
	}
	u := server + "/api/v1/namespaces/" + ns + "/pods?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return listCall{}, fmt.Errorf("build list request: %w", err)
	}
	req.Header.Set("Accept", tableAccept)
	req.Header.Set("Accept-Encoding", "gzip")
	began := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return listCall{}, fmt.Errorf("list pods: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	call := listCall{took: time.Since(began), wire: int64(len(body))}
	if err != nil {
		return call, fmt.Errorf("read list answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return call, fmt.Errorf("list pods: %s: %.300s", resp.Status, body)
	}
	var r io.Reader = strings.NewReader(string(body))
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return call, fmt.Errorf("gunzip list answer: %w", err)
		}
		r = zr
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		return call, fmt.Errorf("gunzip list answer: %w", err)
	}
	call.raw = int64(len(raw))
	var t struct {
		Metadata struct {
			Continue  string `json:"continue"`
			Remaining *int64 `json:"remainingItemCount"`
		} `json:"metadata"`
		Rows []json.RawMessage `json:"rows"`
	}
	if err := json.Unmarshal(raw, &t); err != nil {
		return call, fmt.Errorf("decode pod table: %w", err)
	}
	call.rows, call.remaining, call.next = len(t.Rows), t.Metadata.Remaining, t.Metadata.Continue
	return call, nil
}

// printStrategies writes one line per strategy: its requests, time in all and per request
// (median, min and max over the rounds), bytes, and kube-apiserver's CPU per listing.
func printStrategies(w io.Writer, pods int, results []strategyResult) {
	if len(results) == 0 {
		return
	}
	fmt.Fprintf(w, "\nlist strategies at %d pods (macaque's Table request as its ServiceAccount, straight to kube-apiserver, %d rounds):\n",
		pods, len(results[0].rounds))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "strategy\trequests\trows\tlisting: median (min–max)\teach request: median (min–max)\tgzip\tJSON\tapiserver CPU\tremainingItemCount")
	for _, r := range results {
		var total, each, cpu []float64
		var reqs, rows int
		var wire, raw int64
		remaining := "none"
		for i, round := range r.rounds {
			var sum time.Duration
			for _, c := range round.calls {
				sum += c.took
				each = append(each, float64(c.took))
				if i == 0 {
					rows += c.rows
					wire += c.wire
					raw += c.raw
				}
				if i == 0 && c.remaining != nil && remaining == "none" {
					remaining = strconv.FormatInt(*c.remaining, 10)
				}
			}
			if i == 0 {
				reqs = len(round.calls)
			}
			total = append(total, float64(sum))
			cpu = append(cpu, float64(round.apiserverCPU))
		}
		t, e := summarize(total), summarize(each)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s (%s–%s)\t%s (%s–%s)\t%s\t%s\t%s\t%s\n", r.name, reqs, rows,
			millis(t.median), millis(t.min), millis(t.max), millis(e.median), millis(e.min), millis(e.max),
			kilobytes(float64(wire)), kilobytes(float64(raw)), millis(summarize(cpu).median), remaining)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "(time: request sent → last byte read, on loopback; bytes of the first round; apiserver CPU: utime+stime")
	fmt.Fprintln(w, " over the listing, median, background work included.)")
}
