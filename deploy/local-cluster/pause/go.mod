// The sandbox (pause) process of the local cluster: no dependencies, built here like the rest.
module scalebench.local/local-cluster/pause

go 1.24.0
