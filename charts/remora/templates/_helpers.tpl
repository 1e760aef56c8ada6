{{/* Names. */}}
{{- define "remora.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "remora.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "remora.serviceName" -}}
{{- printf "%s-webhook" (include "remora.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "remora.certSecret" -}}
{{- if eq .Values.certs.mode "certManager" -}}
{{- printf "%s-tls" (include "remora.fullname" .) -}}
{{- else -}}
{{- default (printf "%s-certs" (include "remora.fullname" .)) .Values.certs.secretName -}}
{{- end -}}
{{- end -}}

{{- define "remora.leaseName" -}}
{{- printf "%s-certs" (include "remora.fullname" .) -}}
{{- end -}}

{{- define "remora.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "remora.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "remora.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: remora
{{- end -}}

{{- define "remora.selectorLabels" -}}
app.kubernetes.io/name: {{ include "remora.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: webhook
{{- end -}}

{{/* The DNS names the apiserver may dial the Service by. */}}
{{- define "remora.serviceDNS" -}}
{{- $svc := include "remora.serviceName" . -}}
{{- $ns := .Release.Namespace -}}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) | toJson -}}
{{- end -}}

{{/*
The caBundle to render for a webhook configuration, so that `helm upgrade` never
removes or replaces the live value: the rotation (or cert-manager's CA injector) is
its only writer. Takes (list $ctx "MutatingWebhookConfiguration").
Order: a live caBundle of this configuration, a live caBundle of its sibling, the
value from webhook.caBundle, nothing.
*/}}
{{- define "remora.caBundle" -}}
{{- $ctx := index . 0 -}}
{{- $kind := index . 1 -}}
{{- $name := include "remora.fullname" $ctx -}}
{{- $found := "" -}}
{{- range $k := list $kind "MutatingWebhookConfiguration" "ValidatingWebhookConfiguration" -}}
{{- if not $found -}}
{{- $live := lookup "admissionregistration.k8s.io/v1" $k "" $name -}}
{{- range $hook := (dig "webhooks" list $live) -}}
{{- if and (not $found) (dig "clientConfig" "caBundle" "" $hook) -}}
{{- $found = $hook.clientConfig.caBundle -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- default $ctx.Values.webhook.caBundle $found -}}
{{- end -}}

{{/* clientConfig for a webhook path. Takes (list $ctx "/mutate" $caBundle). */}}
{{- define "remora.clientConfig" -}}
{{- $ctx := index . 0 -}}
{{- $path := index . 1 -}}
{{- $ca := index . 2 -}}
{{- if $ctx.Values.webhook.url }}
url: {{ printf "%s%s" (trimSuffix "/" $ctx.Values.webhook.url) $path | quote }}
{{- else }}
service:
  name: {{ include "remora.serviceName" $ctx }}
  namespace: {{ $ctx.Release.Namespace }}
  path: {{ $path | quote }}
  port: 443
{{- end }}
{{- if $ca }}
caBundle: {{ $ca | quote }}
{{- end }}
{{- end -}}

{{/* Namespaces no webhook ever sees. */}}
{{- define "remora.excludedNamespaces" -}}
{{- $list := concat (list "kube-system") .Values.webhook.excludedNamespaces (list .Release.Namespace) | uniq -}}
{{- toJson $list -}}
{{- end -}}

{{- define "remora.excludeExpression" -}}
- key: kubernetes.io/metadata.name
  operator: NotIn
  values: {{ include "remora.excludedNamespaces" . }}
{{- end -}}

{{/* Enabled capabilities, sorted: list of names. */}}
{{- define "remora.capabilities" -}}
{{- $names := list -}}
{{- range $name, $cap := .Values.catalog.capabilities -}}
{{- if $cap.enabled -}}
{{- $names = append $names $name -}}
{{- end -}}
{{- end -}}
{{- toJson (sortAlpha $names) -}}
{{- end -}}

{{- define "remora.plural" -}}
{{- $plurals := dict "BuildRequest" "buildrequests" "TestRun" "testruns" "DatabaseMigration" "databasemigrations" -}}
{{- get $plurals . -}}
{{- end -}}

{{- define "remora.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* "365d" -> "8760h" (cert-manager takes Go durations); s, m, h pass through. */}}
{{- define "remora.goDuration" -}}
{{- if hasSuffix "d" . -}}
{{- printf "%dh" (mul (trimSuffix "d" . | int) 24) -}}
{{- else -}}
{{- . -}}
{{- end -}}
{{- end -}}

{{/* "true" when the string is an IPv4 or IPv6 address, else empty. */}}
{{- define "remora.isIP" -}}
{{- if or (regexMatch "^[0-9]{1,3}(\\.[0-9]{1,3}){3}$" .) (contains ":" .) -}}true{{- end -}}
{{- end -}}
