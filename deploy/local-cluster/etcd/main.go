// Command etcd is the local cluster's etcd server: upstream etcd's own entry point, built from its
// Go module at the release go.mod names, so nothing is downloaded as a binary.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
