// Template for the Go module that builds the etcd server. `go install
// go.etcd.io/etcd/server/v3@version` refuses the module because its go.mod has
// replace directives; as a plain dependency those are ignored. build.sh fills
// in the pinned version and runs `go mod tidy`.
module remora.local/controlplane/etcd

go 1.24.0

tool go.etcd.io/etcd/server/v3

require go.etcd.io/etcd/server/v3 @ETCD_VERSION@
