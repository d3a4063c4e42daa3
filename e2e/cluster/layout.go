package cluster

import "path/filepath"

// layout names the files of one control plane inside its temp dir.
type layout struct{ dir string }

func (l layout) path(elem ...string) string {
	return filepath.Join(append([]string{l.dir}, elem...)...)
}
func (l layout) pki(name string) string { return l.path("pki", name) }
func (l layout) log(component string) string {
	return l.path("logs", component+".log")
}
func (l layout) etcdData() string             { return l.path("etcd-data") }
func (l layout) adminKubeconfig() string      { return l.path("admin.kubeconfig") }
func (l layout) controllerKubeconfig() string { return l.path("kube-controller-manager.kubeconfig") }
func (l layout) kwokKubeconfig() string       { return l.path("kwok.kubeconfig") }
func (l layout) kwokStages() string           { return l.path("kwok-stages.yaml") }
func (l layout) kwokWorkDir() string          { return l.path("kwok") }
func (l layout) tokenKubeconfig(namespace, serviceAccount string) string {
	return l.path("tokens", namespace+"_"+serviceAccount+".kubeconfig")
}
