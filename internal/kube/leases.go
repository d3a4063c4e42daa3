package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Lease is the part of a coordination.k8s.io/v1 Lease the leader election reads and writes.
type Lease struct {
	APIVersion string        `json:"apiVersion"`
	Kind       string        `json:"kind"`
	Metadata   LeaseMetadata `json:"metadata"`
	Spec       LeaseSpec     `json:"spec"`
}

// LeaseMetadata is a Lease's name, place, version (the precondition of an update) and
// annotations (the election keeps the leader's kills in flight there).
type LeaseMetadata struct {
	Name            string            `json:"name"`
	Namespace       string            `json:"namespace"`
	ResourceVersion string            `json:"resourceVersion,omitempty"`
	Annotations     map[string]string `json:"annotations,omitempty"`
}

// LeaseSpec is the election's record, in client-go's leaderelection terms: who holds the lease,
// for how long after its last renewal, since when, and how often it changed hands.
type LeaseSpec struct {
	HolderIdentity       *string           `json:"holderIdentity,omitempty"`
	LeaseDurationSeconds *int32            `json:"leaseDurationSeconds,omitempty"`
	AcquireTime          *metav1.MicroTime `json:"acquireTime,omitempty"`
	RenewTime            *metav1.MicroTime `json:"renewTime,omitempty"`
	LeaseTransitions     *int32            `json:"leaseTransitions,omitempty"`
}

// leasePath is the URL path of the Lease name in namespace; "" names the collection.
func leasePath(namespace, name string) string {
	p := "/apis/coordination.k8s.io/v1/namespaces/" + namespace + "/leases"
	if name != "" {
		p += "/" + name
	}
	return p
}

// GetLease reads one Lease; a missing one is the API server's NotFound.
func (p *Client) GetLease(ctx context.Context, namespace, name string) (Lease, error) {
	return p.sendLease(ctx, http.MethodGet, leasePath(namespace, name), nil, false)
}

// CreateLease creates l, failing with AlreadyExists if another replica created it first.
func (p *Client) CreateLease(ctx context.Context, l Lease) (Lease, error) {
	return p.sendLease(ctx, http.MethodPost, leasePath(l.Metadata.Namespace, ""), &l, false)
}

// UpdateLease writes l back, failing with 409 Conflict if it changed since it was read: two
// replicas can never both take the lease.
func (p *Client) UpdateLease(ctx context.Context, l Lease) (Lease, error) {
	return p.sendLease(ctx, http.MethodPut, leasePath(l.Metadata.Namespace, l.Metadata.Name), &l, false)
}

// ProbeCreateLease asks, with a dry-run create of l, whether macaque may create it.
func (p *Client) ProbeCreateLease(ctx context.Context, l Lease) error {
	_, err := p.sendLease(ctx, http.MethodPost, leasePath(l.Metadata.Namespace, ""), &l, true)
	return err
}

// ProbeUpdateLease asks, with a dry-run update of l, whether macaque may update it.
func (p *Client) ProbeUpdateLease(ctx context.Context, l Lease) error {
	_, err := p.sendLease(ctx, http.MethodPut, leasePath(l.Metadata.Namespace, l.Metadata.Name), &l, true)
	return err
}

// sendLease sends one request about a Lease (with l as its body, if any) and decodes the answer.
func (p *Client) sendLease(ctx context.Context, method, path string, l *Lease, dryRun bool) (Lease, error) {
	req := p.client.Verb(method).AbsPath(path)
	if l != nil {
		l.APIVersion, l.Kind = "coordination.k8s.io/v1", "Lease"
		body, err := json.Marshal(l)
		if err != nil {
			return Lease{}, fmt.Errorf("encode Lease: %w", err)
		}
		req = req.Body(body)
	}
	if dryRun {
		req = req.Param("dryRun", "All")
	}
	res := req.Do(ctx)
	raw, err := res.Raw()
	if err != nil {
		return Lease{}, res.Error()
	}
	var out Lease
	if err := json.Unmarshal(raw, &out); err != nil {
		return Lease{}, fmt.Errorf("decode Lease: %w", err)
	}
	return out, nil
}
