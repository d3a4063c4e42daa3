// Package alerts asks an Alertmanager which alerts are firing now, for the gate that holds
// macaque's kills while they do (MACAQUE_ALERTMANAGER_URL, MACAQUE_BLOCKING_ALERTS): a chaos kill
// during an incident makes it worse. It reads Alertmanager's v2 API (GET /api/v2/alerts) for the
// alerts that are active and neither silenced nor inhibited, and keeps those its matchers select,
// written in Alertmanager's own syntax and parsed by Alertmanager's own parser, so that a matcher
// means here what it means in a silence or a route.
package alerts
