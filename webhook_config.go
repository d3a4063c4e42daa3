package main

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/macaque-chaos/macaque/internal/webhook"
)

// webhookSettings say where the CloudEvents go (MACAQUE_WEBHOOK_URL, "" for nowhere) and which
// file holds their Authorization header (MACAQUE_WEBHOOK_AUTH_FILE, "" for none).
type webhookSettings struct {
	url, authFile string
}

// checkReceivers reads what the reports say of their cluster, and the webhook they also go to.
func (c Config) checkReceivers(s *settings) error {
	var err error
	if s.cluster, err = parseClusterName(c.ClusterName); err != nil {
		return badSetting("CLUSTER_NAME", "%v", err)
	}
	s.webhook, err = parseWebhook(c.WebhookURL, c.WebhookAuthFile)
	return err
}

// clusterName is what MACAQUE_CLUSTER_NAME may be: a kubeconfig context's or a cloud's cluster
// name (prod-eu-1, gke_shop_europe-west1_main), short enough for a message's first words, with
// nothing to escape in Slack, an Event's note or a CloudEvent's source.
var clusterName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$`)

// parseClusterName reads MACAQUE_CLUSTER_NAME; empty is none.
func parseClusterName(v string) (string, error) {
	v = strings.TrimSpace(v) // a value from a ConfigMap's file may end in a newline
	if v == "" || clusterName.MatchString(v) {
		return v, nil
	}
	return "", fmt.Errorf("%q is not a cluster name: want 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit (prod-eu-1)", v)
}

// parseWebhook reads MACAQUE_WEBHOOK_URL and MACAQUE_WEBHOOK_AUTH_FILE. Plain http is allowed,
// since a receiver in the cluster is commonly reached as http://svc.namespace:port; but not with
// an Authorization header, unless to loopback: a credential must not cross the network in
// clear, where anything on the pod network could read it (as for MACAQUE_SLACK_API_URL).
// Credentials in the URL itself are refused: kubectl describe shows an env var to whoever may
// read the Deployment, while the auth file comes from a Secret.
func parseWebhook(raw, authFile string) (webhookSettings, error) {
	raw, authFile = strings.TrimSpace(raw), strings.TrimSpace(authFile)
	if raw == "" {
		if authFile != "" {
			return webhookSettings{}, badSetting("WEBHOOK_AUTH_FILE", "set without MACAQUE_WEBHOOK_URL: there is no webhook to authorize to")
		}
		return webhookSettings{}, nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return webhookSettings{}, badSetting("WEBHOOK_URL", "invalid URL %q: want http(s)://host[:port]/path", raw)
	}
	if u.User != nil {
		return webhookSettings{}, badSetting("WEBHOOK_URL", "%q carries credentials, which anyone who can read the Deployment sees: put the Authorization header's value in a Secret and name its file in MACAQUE_WEBHOOK_AUTH_FILE", u.Redacted())
	}
	if authFile != "" && u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return webhookSettings{}, badSetting("WEBHOOK_URL", "%q would send the Authorization header of MACAQUE_WEBHOOK_AUTH_FILE in clear text: use https, or http only to loopback (localhost, 127.0.0.0/8, ::1)", raw)
	}
	return webhookSettings{url: raw, authFile: authFile}, nil
}

// checkAuthFile reads the Authorization header's file once at start, so that a path mistyped or
// a Secret not mounted stops macaque with one line rather than drop every event.
func (w webhookSettings) checkAuthFile() error {
	if w.authFile == "" {
		return nil
	}
	if _, err := webhook.ReadAuth(w.authFile); err != nil {
		return badSetting("WEBHOOK_AUTH_FILE", "%v", err)
	}
	return nil
}
