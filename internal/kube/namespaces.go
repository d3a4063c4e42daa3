package kube

import (
	"context"
)

// namespacePage is the most rows one list of namespaces asks for: a cluster has a few thousand
// namespaces at most, so one request nearly always, and a row is a name of at most 63 bytes.
const namespacePage = 5000

// ListNamespaces calls each with the name of every namespace whose labels match selector
// (every namespace when empty), Terminating ones included. It reads the API server's printed
// table without the objects (includeObject=None), a row at a time: names are all macaque needs
// of a namespace, and a namespace's metadata (its managedFields) is ten times its name.
func (p *Client) ListNamespaces(ctx context.Context, selector string, each func(name string)) error {
	next := ""
	for {
		var err error
		if next, err = p.namespacePage(ctx, selector, namespacePage, next, each); err != nil {
			return err
		}
		if next == "" {
			return nil
		}
	}
}

// ProbeListNamespaces asks the API server, with a list of at most one namespace matching
// selector, whether macaque may list namespaces: nil when it may.
func (p *Client) ProbeListNamespaces(ctx context.Context, selector string) error {
	_, err := p.namespacePage(ctx, selector, 1, "", func(string) {})
	return err
}

// namespacePage lists one page of namespaces and returns the continue token of the next.
func (p *Client) namespacePage(ctx context.Context, selector string, limit int64, token string, each func(name string)) (string, error) {
	return tablePage(ctx, p.client.Get().Resource("namespaces"), selector, limit, token, "namespace", decodeNames, each)
}
