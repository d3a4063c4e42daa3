package main

// What the killer's outcomes mean to telemetry, which records whether a tick succeeded but
// cannot tell: the outcomes are the killer's vocabulary, so the judgement stays beside them.

// successfulOutcomes are the outcomes of a tick that did what it should, whether or not a pod
// died: the API server answered and allowed what macaque asked. "not found" is one: the picks
// vanished under churn, which says nothing is wrong with macaque. The others (error, forbidden,
// denied, unknown) need someone to look. The help text of
// macaque_last_successful_tick_timestamp_seconds (internal/telemetry) lists them.
var successfulOutcomes = map[Outcome]bool{
	OutcomeKilled: true, OutcomeDryRun: true, OutcomeNoCandidates: true, OutcomeNotFound: true,
	OutcomeSkipped: true, OutcomeBlocked: true, OutcomePaused: true,
}

// tickSucceeded says whether a tick with these reports succeeded: every report did.
func tickSucceeded(reports []Result) bool {
	for _, r := range reports {
		if !successfulOutcomes[r.Outcome] {
			return false
		}
	}
	return true
}
