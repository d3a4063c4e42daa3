// Command etcd is a real etcd server built from go.etcd.io/etcd/server/v3, so
// the end-to-end control plane needs no prebuilt etcd binary.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
