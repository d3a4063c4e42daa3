package charttest

import (
	"fmt"

	chart "helm.sh/helm/v4/pkg/chart/v2"
)

// Manifest is one of the plain manifests rendered from the chart: a file of the repository's root.
type Manifest struct {
	File    string         // its name, in the repository's root
	Values  map[string]any // over the chart's values.yaml
	Release Release
	Header  string // the comment above its objects, and what kubectl needs that helm makes itself
}

// manifestService names what manages the objects of the plain manifests: not Helm.
const manifestService = "kubectl"

// Manifests are macaque.yml and macaque-cluster.yml: the chart's defaults rendered for release
// macaque, without a namespace (kubectl apply -n places it), and with scope cluster in the
// namespace macaque, which a ClusterRoleBinding's subject must name.
var Manifests = []Manifest{
	{File: "macaque.yml", Release: Release{Name: "macaque", Service: manifestService}, Header: singleHeader},
	{File: "macaque-cluster.yml", Values: map[string]any{"scope": "cluster"}, Release: Release{Name: "macaque", Namespace: "macaque", Service: manifestService}, Header: clusterHeader},
}

// Render renders m from ch.
func (m Manifest) Render(ch *chart.Chart) (string, error) {
	objects, err := Render(ch, m.Values, m.Release)
	if err != nil {
		return "", fmt.Errorf("%s: %w", m.File, err)
	}
	return m.Header + objects, nil
}

const singleHeader = `# macaque: deletes one random Running pod on a schedule and reports it to Slack.
#
#   curl -LO https://github.com/macaque-chaos/macaque/releases/latest/download/macaque.yml
#   $EDITOR macaque.yml                     # edit the env vars of the Deployment below
#   kubectl apply -n shop -f macaque.yml    # apply it in the namespace to test
#
# Nothing here names a namespace: everything lands in the namespace you apply it to, and by
# default macaque kills in that same namespace. The Role lets it list and delete pods there (or
# evict them, with MACAQUE_MODE=evict), and read (get) the workloads that own them, and nowhere
# else; macaque checks each at start (with a dry-run delete, or eviction, and gets of a name that
# cannot exist) and will not start without them. To kill in another namespace (or several), set
# MACAQUE_NAMESPACE and apply the Role and RoleBinding there too (with the RoleBinding's subject
# pointing back at this ServiceAccount). To kill in every namespace, use macaque-cluster.yml (a
# ClusterRole) instead.
#
# Two replicas: only the one holding the Lease macaque-leader kills, and the other takes over
# within 15s when it is lost, at once when it stops cleanly (a drain, a rollout). The Role
# macaque-election lets them create Leases here, and get and update that one only. For one
# replica instead, set MACAQUE_LEADER_ELECTION=false, replicas: 1 and the strategy Recreate (the
# comments below say how).
#
# Opt out without a redeploy: annotate a pod, or any controller above it, and macaque passes
# its pods over from the next tick on ("false" opts back in; any other value excludes):
#   kubectl -n shop annotate deployment web chaos.macaque.dev/exclude=true
#
# Slack (optional): create the token Secret, then set MACAQUE_SLACK_CHANNEL below:
#   kubectl -n shop create secret generic macaque-slack --from-literal=token=xoxb-...
#
# Pause every kill without a redeploy (the kill switch, read at each tick), and resume:
#   kubectl -n shop annotate deploy macaque chaos.macaque.dev/paused=true                  # until removed
#   kubectl -n shop annotate deploy macaque chaos.macaque.dev/paused=2026-12-01T09:00:00Z  # until then
#   kubectl -n shop annotate deploy macaque chaos.macaque.dev/paused-                      # resume
# Any other value pauses too, to be safe. Slack hears once when a pause starts and once when it
# ends. macaque finds this Deployment at start from its own pod (POD_NAME, POD_NAMESPACE below).
#
# Rendered from the Helm chart charts/macaque with its defaults (make manifests); helm install
# deploys the same, with every setting a value: docs/chart.md.
`

const clusterHeader = `# macaque for a whole cluster: deletes one random Running pod on a schedule, in every namespace
# but the system's and those excluded, and reports it to Slack. Every setting below is
# documented as in macaque.yml.
#
#   curl -LO https://github.com/macaque-chaos/macaque/releases/latest/download/macaque-cluster.yml
#   $EDITOR macaque-cluster.yml            # edit the env vars of the Deployment below
#   kubectl apply -f macaque-cluster.yml   # creates the namespace macaque and macaque in it
#
# macaque runs in its own namespace, macaque. Its ClusterRole lets it list and delete pods, and
# read (get) the workloads that own them, in every namespace, and nothing else; at start macaque
# checks each with an access review at cluster scope and will not start without them. The
# pick is uniform over the pods of every namespace in scope, listed in one cluster-wide request.
# kube-system, kube-public and kube-node-lease are never touched unless named beside the "*".
# Two replicas, of which only the holder of the Lease macaque-leader kills, as in macaque.yml.
#
# Slack (optional): create the token Secret, then set MACAQUE_SLACK_CHANNEL below:
#   kubectl -n macaque create secret generic macaque-slack --from-literal=token=xoxb-...
#
# Rendered from the Helm chart charts/macaque with scope: cluster (make manifests); helm install
# --set scope=cluster deploys the same: docs/chart.md.
---
apiVersion: v1
kind: Namespace
metadata:
  name: macaque
  labels:
    app.kubernetes.io/name: macaque
`
