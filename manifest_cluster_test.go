package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// updateManifests rewrites macaque-cluster.yml from macaque.yml: go test -run TestClusterManifest -update-manifests
var updateManifests = flag.Bool("update-manifests", false, "rewrite macaque-cluster.yml from macaque.yml")

// clusterNamespace is where macaque-cluster.yml runs macaque: a ClusterRoleBinding's subject
// must name the ServiceAccount's namespace, so this manifest cannot take it from kubectl -n.
const clusterNamespace = "macaque"

// clusterHeader replaces macaque.yml's header comment in macaque-cluster.yml.
const clusterHeader = `# macaque for a whole cluster: deletes one random Running pod on a schedule, in every namespace
# but the system's and those excluded, and reports it to Slack. Generated from macaque.yml (make
# manifests): every setting below is documented as there.
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
#
# Slack (optional): create the token Secret, then set MACAQUE_SLACK_CHANNEL below:
#   kubectl -n macaque create secret generic macaque-slack --from-literal=token=xoxb-...
---
apiVersion: v1
kind: Namespace
metadata:
  name: macaque
  labels:
    app.kubernetes.io/name: macaque
`

// clusterEnvEdit turns macaque.yml's MACAQUE_NAMESPACE into macaque-cluster.yml's.
var clusterEnvEdit = strings.NewReplacer(`            # Namespace to kill in, or a comma-separated list of them ("shop,cart", one candidate
            # pool: the pick is uniform over their pods; apply the Role and RoleBinding in each).
            # Default: the namespace macaque runs in (POD_NAMESPACE below). For every namespace
            # ("*"), apply macaque-cluster.yml instead: this Role does not reach beyond one.
            # - name: MACAQUE_NAMESPACE
            #   value: "shop"
`, `            # Namespaces to kill in: "*" is every namespace but kube-system, kube-public,
            # kube-node-lease and those of MACAQUE_EXCLUDE_NAMESPACES; a system namespace named
            # beside it ("*,kube-system") is in. A comma-separated list ("shop,cart") works too.
            - name: MACAQUE_NAMESPACE
              value: "*"
            # With "*": comma-separated namespaces never to kill in ("payments,vault"). Default
            # empty.
            # - name: MACAQUE_EXCLUDE_NAMESPACES
            #   value: ""
`)

// objectHead matches the kind and the metadata name of one object of the manifest.
var objectHead = regexp.MustCompile(`(?m)^kind: (\w+)\nmetadata:\n  name: ([a-z0-9-]+)\n`)

// clusterManifest derives macaque-cluster.yml from macaque.yml, object by object: the Role and
// RoleBinding named macaque become cluster-wide, every namespaced object is placed in
// clusterNamespace (the state's Role and RoleBinding stay there: they name one ConfigMap), every
// binding's subject names that namespace, and MACAQUE_NAMESPACE is "*".
func clusterManifest(single string) (string, error) {
	_, objects, ok := strings.Cut(single, "\n---\n")
	if !ok {
		return "", errors.New("macaque.yml has no --- after its header")
	}
	docs := strings.Split(objects, "\n---\n")
	for i, doc := range docs {
		doc += "\n" // the separator took the last line's end
		m := objectHead.FindStringSubmatchIndex(doc)
		if m == nil {
			return "", fmt.Errorf("object %d of macaque.yml has no kind and metadata name, in that order", i+1)
		}
		kind, name := doc[m[2]:m[3]], doc[m[4]:m[5]]
		head := doc[m[0]:m[1]]
		if kind == "RoleBinding" || kind == "ClusterRoleBinding" {
			subject := "  - kind: ServiceAccount\n    name: macaque\n"
			if strings.Count(doc, subject) != 1 {
				return "", fmt.Errorf("%s %s binds no ServiceAccount macaque, or binds it twice", kind, name)
			}
			doc = strings.Replace(doc, subject, subject+"    namespace: "+clusterNamespace+"\n", 1)
		}
		if (kind == "Role" || kind == "RoleBinding") && name == "macaque" {
			doc = strings.Replace(doc, head, "kind: Cluster"+kind+"\nmetadata:\n  name: macaque\n", 1)
			doc = strings.Replace(doc, "  kind: Role\n  name: macaque\n", "  kind: ClusterRole\n  name: macaque\n", 1)
		} else {
			doc = strings.Replace(doc, head, head+"  namespace: "+clusterNamespace+"\n", 1)
		}
		docs[i] = strings.TrimSuffix(doc, "\n")
	}
	out := clusterEnvEdit.Replace(strings.Join(docs, "\n---\n"))
	if !strings.Contains(out, `              value: "*"`) {
		return "", errors.New("macaque.yml's MACAQUE_NAMESPACE comment changed: update clusterEnvEdit")
	}
	return clusterHeader + "---\n" + out, nil
}

// TestClusterManifest checks that macaque-cluster.yml is macaque.yml made cluster-wide, so that
// the two never drift apart: same settings and comments, same rules in a ClusterRole.
func TestClusterManifest(t *testing.T) {
	single, err := os.ReadFile("macaque.yml")
	if err != nil {
		t.Fatal(err)
	}
	want, err := clusterManifest(string(single))
	if err != nil {
		t.Fatal(err)
	}
	if *updateManifests {
		if err := os.WriteFile("macaque-cluster.yml", []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile("macaque-cluster.yml")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("macaque-cluster.yml is not macaque.yml made cluster-wide: run make manifests")
	}
	for _, kind := range []string{"ClusterRole", "ClusterRoleBinding", "Namespace"} {
		if strings.Contains(want, "kind: "+kind+"\nmetadata:\n  name: macaque\n  namespace:") {
			t.Errorf("macaque-cluster.yml places the %s, which is cluster-scoped, in a namespace", kind)
		}
	}
	for _, obj := range []string{"ServiceAccount", "Deployment", "ConfigMap", "Role", "RoleBinding"} {
		if !regexp.MustCompile(`kind: ` + obj + `\nmetadata:\n  name: [a-z-]+\n  namespace: ` + clusterNamespace + `\n`).MatchString(want) {
			t.Errorf("macaque-cluster.yml does not place its %s in %s", obj, clusterNamespace)
		}
	}
}
