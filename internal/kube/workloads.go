package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
)

// OwnerRef is the controller reference of a pod or a workload: what the guard reads next.
type OwnerRef struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	Name       string    `json:"name"`
	UID        types.UID `json:"uid"`
	Controller *bool     `json:"controller"`
}

// String is how a report names the owner: "Kind/name".
func (o OwnerRef) String() string { return o.Kind + "/" + o.Name }

// WorkloadKind is a controller kind whose strength the guard can read.
type WorkloadKind struct {
	Kind     string
	Group    string // API group; "" for core
	Prefix   string // API path prefix: /apis/apps/v1 or /api/v1
	Resource string // plural resource name in the URL and in the Role
}

// The kinds the guard reads, as the API server serves them.
var (
	KindReplicaSet  = WorkloadKind{Kind: "ReplicaSet", Group: "apps", Prefix: "/apis/apps/v1", Resource: "replicasets"}
	KindDeployment  = WorkloadKind{Kind: "Deployment", Group: "apps", Prefix: "/apis/apps/v1", Resource: "deployments"}
	KindStatefulSet = WorkloadKind{Kind: "StatefulSet", Group: "apps", Prefix: "/apis/apps/v1", Resource: "statefulsets"}
	KindDaemonSet   = WorkloadKind{Kind: "DaemonSet", Group: "apps", Prefix: "/apis/apps/v1", Resource: "daemonsets"}
	KindRC          = WorkloadKind{Kind: "ReplicationController", Prefix: "/api/v1", Resource: "replicationcontrollers"}
)

// WorkloadKinds are the kinds whose get the preflight checks, in the order of macaque.yml's Role.
var WorkloadKinds = []WorkloadKind{KindReplicaSet, KindDeployment, KindStatefulSet, KindDaemonSet, KindRC}

// CheckedKind is the WorkloadKind of ref, if the guard knows how to read it.
func CheckedKind(ref OwnerRef) (WorkloadKind, bool) {
	group, _, _ := strings.Cut(ref.APIVersion, "/")
	if !strings.Contains(ref.APIVersion, "/") {
		group = "" // "v1": the core group
	}
	for _, k := range WorkloadKinds {
		if k.Kind == ref.Kind && k.Group == group {
			return k, true
		}
	}
	return WorkloadKind{}, false
}

// Workload is the part of any of the workload kinds the guard reads: the fields of the five
// kinds' specs and statuses share one struct, each kind filling its own.
type Workload struct {
	Metadata struct {
		Name            string            `json:"name"`
		UID             types.UID         `json:"uid"`
		Generation      int64             `json:"generation"`
		ResourceVersion string            `json:"resourceVersion"` // where a recovery's watch of it resumes
		OwnerReferences []OwnerRef        `json:"ownerReferences"`
		Annotations     map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		Replicas *int32 `json:"replicas"`
		// Selector finds its pods for a recovery's watch: a LabelSelector for the apps kinds, a
		// plain map of labels for a ReplicationController, so kept raw and read by kind.
		Selector       json.RawMessage `json:"selector"`
		UpdateStrategy struct {
			Type          string `json:"type"`
			RollingUpdate *struct {
				Partition *int32 `json:"partition"`
			} `json:"rollingUpdate"`
		} `json:"updateStrategy"`
	} `json:"spec"`
	Status struct {
		ObservedGeneration  int64  `json:"observedGeneration"`
		Replicas            int32  `json:"replicas"`
		ReadyReplicas       int32  `json:"readyReplicas"`
		AvailableReplicas   int32  `json:"availableReplicas"`
		UpdatedReplicas     int32  `json:"updatedReplicas"`
		UnavailableReplicas int32  `json:"unavailableReplicas"`
		CurrentRevision     string `json:"currentRevision"`
		UpdateRevision      string `json:"updateRevision"`
		// DaemonSets count nodes, not replicas.
		DesiredNumberScheduled int32 `json:"desiredNumberScheduled"`
		NumberReady            int32 `json:"numberReady"`
		NumberAvailable        int32 `json:"numberAvailable"`
		NumberUnavailable      int32 `json:"numberUnavailable"`
		UpdatedNumberScheduled int32 `json:"updatedNumberScheduled"`
		Conditions             []struct {
			Type    string `json:"type"`
			Status  string `json:"status"` // read by a recovery verdict that says what is missing
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"conditions"`
	} `json:"status"`
}

// Controller is w's controlling owner, if it has one.
func (w Workload) Controller() (OwnerRef, bool) {
	return ControllerOf(w.Metadata.OwnerReferences)
}

// ControllerOf finds the controller among refs: the one marked controller, as the API server
// allows at most one.
func ControllerOf(refs []OwnerRef) (OwnerRef, bool) {
	for _, r := range refs {
		if r.Controller != nil && *r.Controller {
			return r, true
		}
	}
	return OwnerRef{}, false
}

// Desired is spec.replicas, which the API server defaults to 1 when it is left out.
func (w Workload) Desired() int32 {
	if w.Spec.Replicas == nil {
		return 1
	}
	return *w.Spec.Replicas
}

// GetWorkload reads one controller of kind k; a 404 comes back as the API server's error.
func (p *Client) GetWorkload(ctx context.Context, namespace string, k WorkloadKind, name string) (Workload, error) {
	var w Workload
	// Result.Error, not Raw's error nor DoRaw's: only it decodes the API server's Status, and
	// RBAC's 403 is told from others by the Status's message.
	res := p.client.Get().AbsPath(k.Prefix, "namespaces", namespace, k.Resource, name).Do(ctx)
	body, err := res.Raw()
	if err != nil {
		return w, res.Error()
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return w, fmt.Errorf("decode %s %q: %w", k.Kind, name, err)
	}
	return w, nil
}

// ProbeGet asks whether macaque may get objects of kind k in namespace: nil when it may.
func (p *Client) ProbeGet(ctx context.Context, namespace string, k WorkloadKind) error {
	// PreflightPod is no valid name of any kind, so the answer is 404 when get is allowed.
	err := p.client.Get().AbsPath(k.Prefix, "namespaces", namespace, k.Resource, PreflightPod).Do(ctx).Error()
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err == nil {
		return fmt.Errorf("a get of %s %q succeeded, which no API server should allow", k.Resource, PreflightPod)
	}
	return err
}

// WorkloadPermissions are verb on each workload kind, as an access review asks for them.
func WorkloadPermissions(verb string) []Permission {
	out := make([]Permission, 0, len(WorkloadKinds))
	for _, k := range WorkloadKinds {
		out = append(out, Permission{Verb: verb, Group: k.Group, Resource: k.Resource})
	}
	return out
}

// WorkloadResources are the resources the guard gets, as a Role names them.
func WorkloadResources() []string {
	out := make([]string, 0, len(WorkloadKinds))
	for _, k := range WorkloadKinds {
		out = append(out, k.Resource)
	}
	return out
}
