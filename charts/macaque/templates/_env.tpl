{{/* The container's env: every MACAQUE_* setting with its value, each with the comment that
documents it (the plain manifests are edited there). */}}
{{- define "macaque.env" -}}
# When to kill: a 5-field cron spec (minute hour day-of-month month day-of-week) or a
# descriptor such as @hourly or "@every 30m". Required. The chart's default: on the
# hour, 10:00 to 16:00 UTC (MACAQUE_TIMEZONE below), Monday to Friday: set your own
# time zone so that it fires while people are around to watch.
- name: MACAQUE_CRONTAB
  value: {{ .Values.schedule | quote }}
# IANA time zone the schedule is read in, e.g. "Europe/Paris" or "America/New_York"
# (daylight saving included). Default UTC.
- name: MACAQUE_TIMEZONE
  value: {{ .Values.timezone | quote }}
# "true" allows a schedule firing more often than once a minute (@every 10s), for
# demos and tests; without it such a schedule is refused at start as a likely typo.
# Default false.
- name: MACAQUE_ALLOW_FAST_SCHEDULE
  value: {{ .Values.allowFastSchedule | toString | quote }}
# Days on which nothing is killed, read in MACAQUE_TIMEZONE, comma-separated:
# "2026-12-25" (that day) or "12-25" (every year; "02-29" allowed), such as
# "12-24,12-25,12-31,01-01". The schedule's activations on those days do not fire, and
# the log names the days it passes over. Default empty.
- name: MACAQUE_EXCLUDED_DAYS
  value: {{ join "," .Values.excludedDays | quote }}
{{- if eq .Values.scope "cluster" }}
# Namespaces to kill in: "*" is every namespace but kube-system, kube-public,
# kube-node-lease and those of MACAQUE_EXCLUDE_NAMESPACES; a system namespace named
# beside it ("*,kube-system") is in. A comma-separated list ("shop,cart") works too.
{{- else }}
# Namespace to kill in, or a comma-separated list of them ("shop,cart", one candidate
# pool: the pick is uniform over their pods; the Role and RoleBinding must be in each).
# Default: the namespace macaque runs in (POD_NAMESPACE below). For every namespace
# ("*"), use macaque-cluster.yml (the chart: scope: cluster): this Role does not reach
# beyond one.
{{- end }}
{{- with include "macaque.namespaces" . }}
- name: MACAQUE_NAMESPACE
  value: {{ . | quote }}
{{- else }}
# - name: MACAQUE_NAMESPACE
#   value: "shop"
{{- end }}
{{- if or (eq .Values.scope "cluster") .Values.excludeNamespaces }}
# With "*": comma-separated namespaces never to kill in ("payments,vault"). Default
# empty.
- name: MACAQUE_EXCLUDE_NAMESPACES
  value: {{ join "," .Values.excludeNamespaces | quote }}
{{- end }}
{{- if or (eq .Values.scope "cluster") .Values.namespaceSelector }}
# With "*": a label selector on namespaces ("chaos=on", "env in (staging,qa)"): only the
# namespaces it selects are in scope, less the excluded ones; read again at each tick, so
# "kubectl label namespace shop chaos=on" brings shop in from the next one. Default empty:
# every namespace.
- name: MACAQUE_NAMESPACE_SELECTOR
  value: {{ .Values.namespaceSelector | quote }}
{{- end }}
# Label selector for the victims; set-based syntax works: "app in (web,api),tier!=db".
# Empty means every pod in the namespace. The chart's default only takes pods that
# opted in.
- name: MACAQUE_SELECTOR
  value: {{ .Values.selector | quote }}
# "true": pick and report a victim, but delete nothing. Default false.
- name: MACAQUE_DRY_RUN
  value: {{ .Values.dryRun | toString | quote }}
# The steady-state guard. "true" (default): a pod is killed only if it is Ready and its
# controller is at full strength right now (every desired replica ready, the latest
# spec observed) and not mid-rollout: its ReplicaSet and the Deployment above it, or
# its StatefulSet, DaemonSet or ReplicationController. Otherwise the next random pick
# is tried (up to 5 a tick), and a tick with none safe reports "skipped" with why
# for each ("web: 2/3 ready"). "false": any Running pod in scope may be killed, unless
# it or a controller above it carries the chaos.macaque.dev/exclude annotation (which
# is read either way, with the gets of the Role above).
- name: MACAQUE_REQUIRE_HEALTHY
  value: {{ .Values.requireHealthy | toString | quote }}
# With the guard: "true" also kills bare pods (no controller), which nothing
# recreates. Default false: they are skipped.
- name: MACAQUE_ALLOW_ORPHANS
  value: {{ .Values.allowOrphans | toString | quote }}
# With the guard: comma-separated kinds of owners macaque cannot check, whose pods it
# may kill anyway, as ownerReferences spell them ("Job,Rollout"); the report says
# their strength could not be checked. Default empty: pods of a Job or of any other
# kind are skipped.
- name: MACAQUE_OWNER_KINDS
  value: {{ join "," .Values.ownerKinds | quote }}
# Pods younger than this Go duration ("10m", "1h30m") are passed over, by their
# creationTimestamp: a pod still starting up is not a fair test. Default "0": no
# minimum.
- name: MACAQUE_MIN_POD_AGE
  value: {{ .Values.minPodAge | quote }}
# How to kill: "delete" (default) deletes the pod; "evict" evicts it through the
# Eviction API, so that PodDisruptionBudgets are respected: a pick whose PDB allows no
# disruption now is passed over, and a tick with none evictable reports "blocked",
# naming the PDB. Each mode needs its verb in the Role above, and only that one: for
# "evict", edit the Role as it says ("delete" removed, the pods/eviction and
# poddisruptionbudgets rules uncommented; the chart: mode: evict does both).
- name: MACAQUE_MODE
  value: {{ .Values.mode | quote }}
# Grace period given the victim, overriding its terminationGracePeriodSeconds, in
# either mode: whole seconds ("30") or a duration ("30s", "1m"); "0" is a hard kill.
# Default empty: the pod's own.
- name: MACAQUE_GRACE_PERIOD
  value: {{ .Values.gracePeriod | toString | quote }}
# Victims per tick: a number (1 to 100) or a percentage of the candidates ("10%",
# at least 1, at most 100), distinct pods never two of one controller, one report
# each. Default 1.
- name: MACAQUE_KILL_COUNT
  value: {{ .Values.killCount | toString | quote }}
# A workload (a Deployment, StatefulSet...) that lost a pod is not hit again before
# this long: a Go duration such as "1h" or "24h". Kept in the ConfigMap
# macaque-cooldown above, so a restart of macaque does not reset it. Default "0": off.
- name: MACAQUE_COOLDOWN
  value: {{ .Values.cooldown | quote }}
# After each kill macaque follows the victim's workload (watch, see the Role) and
# reports a recovery verdict in the kill's Slack thread, the log and an Event: the
# replacement created, Ready, the workload back at full strength, each timed from
# the kill. A workload not back within this Go duration is "not recovered", an alarm
# also posted to the channel, saying what is missing. Default "5m".
- name: MACAQUE_RECOVERY_TIMEOUT
  value: {{ .Values.recoveryTimeout | quote }}
# The alert gate: Alertmanager's root URL ("http://alertmanager-operated.monitoring:9093").
# At each tick, before listing, macaque asks its v2 API for the alerts firing that
# MACAQUE_BLOCKING_ALERTS selects, neither silenced nor inhibited: one with a namespace
# label holds that namespace (its pods are passed over, the report names the alert),
# one without holds the whole tick ("skipped", naming it). A tick that cannot ask it
# (unreachable, not 2xx, a bad answer) kills nothing and reports "error". Empty: no gate.
- name: MACAQUE_ALERTMANAGER_URL
  value: {{ .Values.alertmanager.url | quote }}
# The alerts that hold the kills, as Alertmanager matchers: 'severity="critical"'
# (default), '{severity=~"critical|page",team=~"pay.*"}', or '{}' for every alert.
- name: MACAQUE_BLOCKING_ALERTS
  value: {{ .Values.alertmanager.blockingAlerts | quote }}
# Slack channel ID (C0123456789) to report to; needs the token below. Empty: log only.
- name: MACAQUE_SLACK_CHANNEL
  value: {{ .Values.slack.channel | quote }}
{{- with .Values.slack.existingSecret }}
# Slack bot token with chat:write, from the Secret {{ . }} (optional: no Secret,
# no Slack).
- name: MACAQUE_SLACK_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.slack.existingSecretKey }}
      optional: true
{{- end }}
# Slack Web API base URL; change only for a proxy. Default https://slack.com/api/.
- name: MACAQUE_SLACK_API_URL
  value: {{ .Values.slack.apiUrl | quote }}
# The cluster's name ("prod-eu"), at the start of every Slack message and Event note,
# on every log line and in every webhook event: for a channel that serves several
# clusters. 1 to 63 letters, digits, '-', '_' or '.'. Default empty: none.
- name: MACAQUE_CLUSTER_NAME
  value: {{ .Values.clusterName | quote }}
# Where to POST each tick's reports and each recovery verdict as a CloudEvent
# (application/cloudevents+json; types dev.macaque.kill, dev.macaque.tick and
# dev.macaque.verdict), with or without Slack: https, or http (an in-cluster
# "http://receiver.ns:8080/", but then with no Authorization header unless to
# loopback). Default empty: none.
- name: MACAQUE_WEBHOOK_URL
  value: {{ .Values.webhook.url | quote }}
{{- with .Values.webhook.authSecret }}
# The webhook's Authorization header value (Bearer ...): the key of the Secret {{ . }},
# mounted below; re-read before each send, so a rotated Secret is used without a
# restart.
- name: MACAQUE_WEBHOOK_AUTH_FILE
  value: /etc/macaque/webhook/{{ $.Values.webhook.authSecretKey }}
{{- else }}
# The webhook's Authorization header value (Bearer ...), from a file: mount a Secret's
# key as a volume (no subPath, so that a rotated Secret is re-read) and name it here
# (the chart: webhook.authSecret). Default empty: no header.
# - name: MACAQUE_WEBHOOK_AUTH_FILE
#   value: /etc/macaque/webhook/authorization
{{- end }}
# "true" (default): macaque runs as one of several replicas (replicas above), and only
# the one holding the Lease macaque-leader in its own namespace kills; the other is a
# ready standby that takes over within 15s when the leader is lost, at once when the
# leader stops cleanly (it releases the Lease on SIGTERM). Needs get, create and update
{{- if .Values.leaderElection }}
# on that Lease: the Role {{ include "macaque.fullname" . }}-election above. "false": no Lease, for one replica
# only (two would both kill at every tick): then set replicas to 1 and the strategy to
# Recreate above, and delete that Role.
{{- else }}
# on that Lease (the chart's leaderElection: true grants them). "false": no Lease, for
# one replica only (two would both kill at every tick).
{{- end }}
- name: MACAQUE_LEADER_ELECTION
  value: {{ .Values.leaderElection | toString | quote }}
# host:port of the HTTP server for /metrics, /healthz and /readyz. Default ":8080"
# (the port named metrics below). Empty: no server; then remove the port and the probes
# below too (the chart does).
- name: MACAQUE_HTTP_ADDR
  value: {{ .Values.httpAddr | quote }}
# Log format (text or json) and level (debug, info, warn, error). Defaults text, info.
- name: MACAQUE_LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
- name: MACAQUE_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
# Set by Kubernetes, do not edit: macaque never kills its own pod, defaults to its
# own namespace, finds its Deployment (the pause switch) from its pod, and holds the
# Lease (MACAQUE_LEADER_ELECTION) under its pod's name.
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- with include "macaque.goMemLimit" . }}
# The Go runtime collects garbage harder as its memory nears this soft limit. It is
# below the memory limit, not equal to it: the container's limit also counts what
# the runtime does not manage (the binary's pages, page cache), and the runtime needs
# headroom to react before the OOM killer does. Keep it ~4MiB under limits.memory.
- name: GOMEMLIMIT
  value: {{ . | quote }}
{{- end }}
{{- end }}
