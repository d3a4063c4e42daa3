package kube

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
)

// Permission is one thing macaque's RBAC must allow, as a Role's rule spells it.
type Permission struct {
	Verb, Group, Resource, Subresource string
}

// String is the permission as kubectl auth can-i takes it: "delete pods", "create pods/eviction".
func (p Permission) String() string {
	res := p.Resource
	if p.Subresource != "" {
		res += "/" + p.Subresource
	}
	if p.Group != "" {
		res += "." + p.Group
	}
	return p.Verb + " " + res
}

// accessReview is the part of a SelfSubjectAccessReview that MayI sends and reads.
type accessReview struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Spec       struct {
		ResourceAttributes struct {
			Namespace   string `json:"namespace"`
			Verb        string `json:"verb"`
			Group       string `json:"group"`
			Resource    string `json:"resource"`
			Subresource string `json:"subresource,omitempty"`
		} `json:"resourceAttributes"`
	} `json:"spec"`
	Status struct {
		Allowed         bool   `json:"allowed"`
		Reason          string `json:"reason"`
		EvaluationError string `json:"evaluationError"`
	} `json:"status"`
}

// MayI asks the API server whether macaque may do what perm names (a SelfSubjectAccessReview,
// which any authenticated user may create): "" when it may, otherwise the authorizer's reason.
func (p *Client) MayI(ctx context.Context, perm Permission) (string, error) {
	review := accessReview{APIVersion: "authorization.k8s.io/v1", Kind: "SelfSubjectAccessReview"}
	attrs := &review.Spec.ResourceAttributes
	// An empty namespace asks about every namespace, which only a ClusterRoleBinding grants.
	attrs.Verb, attrs.Group, attrs.Resource, attrs.Subresource = perm.Verb, perm.Group, perm.Resource, perm.Subresource
	body, err := json.Marshal(review)
	if err != nil {
		return "", fmt.Errorf("encode access review: %w", err)
	}
	res := p.client.Post().AbsPath("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews").Body(body).Do(ctx)
	raw, err := res.Raw()
	if err != nil {
		return "", res.Error()
	}
	var answer accessReview
	if err := json.Unmarshal(raw, &answer); err != nil {
		return "", fmt.Errorf("decode access review: %w", err)
	}
	if answer.Status.Allowed {
		return "", nil
	}
	return cmp.Or(answer.Status.Reason, answer.Status.EvaluationError, "no rule allows it"), nil
}
