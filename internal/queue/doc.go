// Package queue is the unbounded FIFO between a goroutine that must never wait (the notifier's
// intake, fed by the killer) and one that may wait as long as it likes (a sender to Slack or to
// a webhook): a push never blocks and never drops.
package queue
