// Package webhook posts macaque's reports and verdicts to any HTTP receiver as CloudEvents 1.0
// in structured JSON mode (MACAQUE_WEBHOOK_URL): each event is one POST whose body is the whole
// event, with the Content-Type application/cloudevents+json, which Knative, Argo Events,
// Dapr and any CloudEvents SDK read as it is.
//
// The envelope (event.go) and the data it carries (data.go) are written by hand rather than with
// the CloudEvents Go SDK (github.com/cloudevents/sdk-go/v2): a structured event is eight JSON
// attributes, and the SDK would add its event package's validation and reflection-based codecs
// (+450,560 bytes to the stripped binary) or, with its HTTP client, +1,703,936 bytes, which
// would take macaque past its 20 MB budget; the unit tests check the attributes the
// specification requires instead.
//
// The Sender (sender.go) delivers them as the Slack notifier delivers its messages: in a
// goroutine of its own behind a queue without bound, so that neither a kill nor Slack ever waits
// on the receiver; each event is retried with the same backoff, after the Retry-After of a 429,
// and one the receiver refused or that outlasted the retries is logged and counted as dropped.
// An event sent again keeps its id, so a receiver that deduplicates on source and id, as the
// specification asks, shows it once.
package webhook
