package kube

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
)

// Client is macaque's one API client: JSON over client-go's REST client, without the generated clientsets
// (the typed clients of the five API groups it uses measured 39.7 MB stripped against 19.4 MB).
// Each consumer declares the methods it calls as an interface of its own.
type Client struct {
	client rest.Interface
}

// NewClient builds the REST client for the core/v1 API from cfg.
func NewClient(cfg *rest.Config) (*Client, error) {
	scheme := runtime.NewScheme()
	gv := schema.GroupVersion{Version: "v1"}
	metav1.AddToGroupVersion(scheme, gv)
	c := rest.CopyConfig(cfg)
	c.APIPath = "/api"
	c.GroupVersion = &gv
	c.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	c.ContentType = "application/json"
	client, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("build API client: %w", err)
	}
	return &Client{client: client}, nil
}
