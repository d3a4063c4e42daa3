package alerts

import (
	"errors"
	"fmt"
	"strings"

	"github.com/prometheus/alertmanager/matcher/parse"
	"github.com/prometheus/alertmanager/pkg/labels"
)

// Matchers select the alerts that block kills. Alertmanager's own parser reads them (its
// matcher/parse, the UTF-8 parser its API and amtool try first; classic matchers such as
// severity="critical" read the same), so that a matcher copied from a route or a silence means
// the same here, quoting, escapes and anchored regexps included. Measured on the stripped binary
// (make build): 19,996,832 bytes before the alert gate, 20,033,696 with the gate and a stub in
// place of the parser, 20,082,848 with Alertmanager's parser: 49,152 bytes for it, of which a
// parser of our own would win back only part, at the price of a second reading of the syntax.
type Matchers struct {
	m []*labels.Matcher
}

// ParseMatchers reads matchers as Alertmanager writes them: severity="critical", or
// {severity="critical",team=~"pay.*"}. Empty selects nothing and is refused: {} selects every
// alert, and says so.
func ParseMatchers(s string) (Matchers, error) {
	if strings.TrimSpace(s) == "" {
		return Matchers{}, errors.New(`empty: want Alertmanager matchers such as severity="critical", or {} for every alert`)
	}
	m, err := parse.Matchers(s)
	if err != nil {
		return Matchers{}, fmt.Errorf("%q is not a list of Alertmanager matchers (e.g. severity=\"critical\" or {severity=\"critical\",team=~\"pay.*\"}): %w", s, err)
	}
	return Matchers{m: []*labels.Matcher(m)}, nil
}

// Match says whether an alert with these labels is selected; every matcher must match.
// A label the alert lacks reads as empty, as Alertmanager reads it (labels.Matchers.Matches,
// which is not called: its model.LabelSet would cost the binary 9 KB more).
func (ms Matchers) Match(set map[string]string) bool {
	for _, m := range ms.m {
		if !m.Matches(set[m.Name]) {
			return false
		}
	}
	return true
}

// String is the matchers as Alertmanager prints them: {severity="critical"}.
func (ms Matchers) String() string {
	return labels.Matchers(ms.m).String()
}
