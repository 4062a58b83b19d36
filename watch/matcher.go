package watch

import (
	"fmt"

	amlabels "github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/common/model"
)

// maxMatchersLen bounds a --webhook-match: a person types it.
const maxMatchersLen = 4096

// Matchers select alerts by their labels, written in Alertmanager's own
// matcher syntax (alertname=~"SnapdiagSyn.*",instance="db1:9917", in
// braces or not) and parsed by Alertmanager's own parser, so a matcher
// copied from a route or a silence means the same here. Regular
// expressions are anchored at both ends; a label an alert lacks has the
// empty value. No matchers match every alert.
type Matchers struct{ ms amlabels.Matchers }

// ParseMatchers reads a comma-separated list of matchers.
func ParseMatchers(s string) (Matchers, error) {
	if len(s) > maxMatchersLen {
		return Matchers{}, fmt.Errorf("matchers: %d bytes, more than %d", len(s), maxMatchersLen)
	}
	ms, err := amlabels.ParseMatchers(s)
	if err != nil {
		return Matchers{}, fmt.Errorf("matchers: %w", err)
	}
	return Matchers{ms: ms}, nil
}

// Matches reports whether every matcher matches labels.
func (m Matchers) Matches(labels map[string]string) bool {
	set := make(model.LabelSet, len(labels))
	for k, v := range labels {
		set[model.LabelName(k)] = model.LabelValue(v)
	}
	return m.ms.Matches(set)
}

// String writes the matchers back in the syntax ParseMatchers reads.
func (m Matchers) String() string { return m.ms.String() }
