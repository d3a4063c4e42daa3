{{/* The chart's name, nameOverride if set. */}}
{{- define "macaque.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The objects' name: the release's name if it holds the chart's (a release "macaque" makes
"macaque", as the plain manifests name it), else release-chart. */}}
{{- define "macaque.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The labels every object carries: Kubernetes' recommended app.kubernetes.io set. */}}
{{- define "macaque.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "macaque.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: chaos-monkey
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The labels that select macaque's pod: unchanging for the life of a release. */}}
{{- define "macaque.selectorLabels" -}}
app.kubernetes.io/name: {{ include "macaque.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* metadata.namespace, when the release has one: the plain manifests are rendered without, so
that kubectl apply -n puts them where it is told. */}}
{{- define "macaque.namespace" -}}
{{- with .Release.Namespace }}{{ printf "\n  namespace: %s" . }}{{ end }}
{{- end }}

{{- define "macaque.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "macaque.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* A ServiceAccount subject: with the release's namespace when it has one (a ClusterRoleBinding
must name it; a RoleBinding without one means its own namespace). */}}
{{- define "macaque.subject" -}}
- kind: ServiceAccount
  name: {{ include "macaque.serviceAccountName" . }}
  {{- with .Release.Namespace }}
  namespace: {{ . }}
  {{- end }}
{{- end }}

{{/* MACAQUE_NAMESPACE: the namespaces listed, or "*" with scope cluster; empty means macaque's
own. */}}
{{- define "macaque.namespaces" -}}
{{- if .Values.namespaces }}
{{- join "," .Values.namespaces }}
{{- else if eq .Values.scope "cluster" }}
{{- "*" }}
{{- end }}
{{- end }}

{{/* The namespaces other than the release's that scope namespace binds the Role in. */}}
{{- define "macaque.otherNamespaces" -}}
{{- $own := .Release.Namespace }}
{{- range .Values.namespaces }}
{{- if and (ne . $own) (ne . "*") }}
{{ . }}
{{- end }}
{{- end }}
{{- end }}

{{/* The port of MACAQUE_HTTP_ADDR; empty when macaque serves nothing. */}}
{{- define "macaque.httpPort" -}}
{{- with .Values.httpAddr }}
{{- regexReplaceAll "^.*:" . "" }}
{{- end }}
{{- end }}

{{- define "macaque.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* GOMEMLIMIT: 4MiB under limits.memory, when that is in Mi or Gi; empty otherwise. */}}
{{- define "macaque.goMemLimit" -}}
{{- $limit := toString (dig "limits" "memory" "" (.Values.resources | default dict)) }}
{{- if regexMatch "^[0-9]+Mi$" $limit }}
{{- printf "%dMiB" (sub (trimSuffix "Mi" $limit | atoi) 4) }}
{{- else if regexMatch "^[0-9]+Gi$" $limit }}
{{- printf "%dMiB" (sub (mul (trimSuffix "Gi" $limit | atoi) 1024) 4) }}
{{- end }}
{{- end }}

{{/* Refuses values that would deploy a macaque that cannot start, or one that kills where it
should not; the schema checks each value alone, this their combinations. */}}
{{- define "macaque.validate" -}}
{{- if and (eq .Values.scope "namespace") (has "*" .Values.namespaces) }}
{{- fail "namespaces: \"*\" (every namespace) needs scope: cluster, a ClusterRole; with scope: namespace list the namespaces" }}
{{- end }}
{{- if and .Values.slack.channel (not .Values.slack.existingSecret) }}
{{- fail "slack.channel needs slack.existingSecret, the Secret holding the bot token" }}
{{- end }}
{{- if and (not .Values.httpAddr) (or .Values.metrics.podMonitor.enabled .Values.metrics.serviceMonitor.enabled .Values.networkPolicy.metricsFrom) }}
{{- fail "httpAddr is empty, so macaque serves no /metrics: metrics.podMonitor, metrics.serviceMonitor and networkPolicy.metricsFrom need it" }}
{{- end }}
{{- if and .Values.httpAddr (not (regexMatch "^[0-9]+$" (include "macaque.httpPort" .))) }}
{{- fail "httpAddr must be host:port (:8080, 0.0.0.0:8080), with a port the probes can reach" }}
{{- end }}
{{- if eq (include "macaque.httpPort" .) "0" }}
{{- fail "httpAddr: port 0 (any free port) cannot be probed nor scraped in a pod: name a port" }}
{{- end }}
{{- end }}
