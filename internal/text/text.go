// Package text holds the few string helpers that every part of macaque writing a report, an
// Event or a verdict shares, so that they all read alike.
package text

import (
	"strings"
	"unicode/utf8"
)

// Join puts the notes (or reasons) of one report in one line, in order; any may be empty.
func Join(notes ...string) string {
	var out []string
	for _, n := range notes {
		if n != "" {
			out = append(out, n)
		}
	}
	return strings.Join(out, "; ")
}

// Truncate cuts s to at most n bytes without splitting a UTF-8 character, marking a cut with "...".
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
