package kube

import (
	"context"
	"encoding/json"
	"fmt"
)

// ConfigMap is the part of a v1 ConfigMap macaque reads and writes.
type ConfigMap struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name            string `json:"name"`
		Namespace       string `json:"namespace"`
		ResourceVersion string `json:"resourceVersion,omitempty"`
	} `json:"metadata"`
	Data map[string]string `json:"data,omitempty"`
}

// configMapPath is the URL path of ConfigMap name in namespace.
func configMapPath(namespace, name string) string {
	return "/api/v1/namespaces/" + namespace + "/configmaps/" + name
}

// GetConfigMap reads one ConfigMap.
func (p *Client) GetConfigMap(ctx context.Context, namespace, name string) (ConfigMap, error) {
	var cm ConfigMap
	res := p.client.Get().AbsPath(configMapPath(namespace, name)).Do(ctx)
	body, err := res.Raw()
	if err != nil {
		return cm, res.Error()
	}
	if err := json.Unmarshal(body, &cm); err != nil {
		return cm, fmt.Errorf("decode ConfigMap %s/%s: %w", namespace, name, err)
	}
	return cm, nil
}

// UpdateConfigMap writes cm back, failing with 409 Conflict if it changed since it was read.
func (p *Client) UpdateConfigMap(ctx context.Context, cm ConfigMap) (ConfigMap, error) {
	return p.putConfigMap(ctx, cm, false)
}

// ProbeUpdateConfigMap asks, with a dry-run update of cm, whether macaque may update it.
func (p *Client) ProbeUpdateConfigMap(ctx context.Context, cm ConfigMap) error {
	_, err := p.putConfigMap(ctx, cm, true)
	return err
}

// putConfigMap sends cm as a PUT, with its resourceVersion as the precondition.
func (p *Client) putConfigMap(ctx context.Context, cm ConfigMap, dryRun bool) (ConfigMap, error) {
	cm.APIVersion, cm.Kind = "v1", "ConfigMap"
	body, err := json.Marshal(cm)
	if err != nil {
		return cm, fmt.Errorf("encode ConfigMap: %w", err)
	}
	req := p.client.Put().AbsPath(configMapPath(cm.Metadata.Namespace, cm.Metadata.Name)).Body(body)
	if dryRun {
		req = req.Param("dryRun", "All")
	}
	res := req.Do(ctx)
	raw, err := res.Raw()
	if err != nil {
		return cm, res.Error()
	}
	var out ConfigMap
	if err := json.Unmarshal(raw, &out); err != nil {
		return cm, fmt.Errorf("decode ConfigMap: %w", err)
	}
	return out, nil
}
