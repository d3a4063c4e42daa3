// Package webhook posts macaque's reports and verdicts to any HTTP receiver as CloudEvents 1.0
// in structured JSON mode (MACAQUE_WEBHOOK_URL): each event is one POST whose body is the whole
// event, with the Content-Type application/cloudevents+json, which Knative, Argo Events,
// Dapr and any CloudEvents SDK read as it is.
//
// The envelope (event.go) and the data it carries (data.go) are written by hand rather than with
// the CloudEvents Go SDK (github.com/cloudevents/sdk-go/v2, v2.16.2): a structured event is eight
// JSON attributes. Measured on the stripped binary (make build), this whole feature by hand adds
// 53,248 bytes (19,996,832 → 20,050,080); encoding the envelope with the SDK's event package
// instead would add 315,392 more (20,365,472), and sending with its HTTP client 1,028,096 more
// (21,078,176), for retries that would still have to be macaque's own (the injected clock, the
// drop counting). The unit tests check the attributes the specification requires instead.
//
// The Sender (sender.go) delivers them as the Slack notifier delivers its messages: in a
// goroutine of its own behind a queue without bound, so that neither a kill nor Slack ever waits
// on the receiver; each event is retried with the same backoff, after the Retry-After of a 429,
// and one the receiver refused or that outlasted the retries is logged and counted as dropped.
// An event sent again keeps its id, so a receiver that deduplicates on source and id, as the
// specification asks, shows it once.
package webhook
