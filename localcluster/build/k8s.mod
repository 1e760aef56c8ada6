// Template for the Go module that builds kube-apiserver and
// kube-controller-manager from k8s.io/kubernetes. build.sh fills in the
// pinned version and the replace block (one line per staging module that the
// release's own go.mod points at ./staging), then runs `go mod tidy`.
module remora.local/controlplane/k8s

go 1.24.0

godebug default=go1.24

tool (
	k8s.io/kubernetes/cmd/kube-apiserver
	k8s.io/kubernetes/cmd/kube-controller-manager
)

require k8s.io/kubernetes @K8S_VERSION@

replace (
@REPLACES@
)
