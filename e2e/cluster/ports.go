package cluster

import (
	"fmt"
	"net"
	"strconv"
)

// ports are the loopback ports the control plane listens on.
type ports struct {
	etcdClient, etcdPeer, apiServer int
}

func (p ports) etcdClientURL() string { return "http://127.0.0.1:" + strconv.Itoa(p.etcdClient) }
func (p ports) etcdPeerURL() string   { return "http://127.0.0.1:" + strconv.Itoa(p.etcdPeer) }
func (p ports) apiServerURL() string  { return "https://127.0.0.1:" + strconv.Itoa(p.apiServer) }

// freePorts asks the kernel for n distinct free loopback ports, so several
// control planes (parallel test packages) can run side by side. The ports are
// released before the components bind them; another process could grab one in
// between, which shows up as a component failing to start.
func freePorts(n int) ([]int, error) {
	listeners := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
