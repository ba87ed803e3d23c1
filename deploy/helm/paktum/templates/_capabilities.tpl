{{/*
Objects of optional APIs (the Prometheus Operator's monitors, KEDA's ScaledObject) render only when the cluster
serves that API: a release on a cluster without their CRDs then installs, and NOTES says what was left out.
`helm template` knows no cluster: pass `--api-versions monitoring.coreos.com/v1 --api-versions keda.sh/v1alpha1`.
Each returns "true" or nothing.
*/}}
{{- define "paktum.serviceMonitorOn" -}}
{{- if and .Values.metrics.serviceMonitor.enabled (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") -}}true{{- end -}}
{{- end -}}

{{- define "paktum.podMonitorOn" -}}
{{- if and .Values.metrics.podMonitor.enabled (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") -}}true{{- end -}}
{{- end -}}

{{- define "paktum.kedaOn" -}}
{{- if and .Values.hasher.keda.enabled (.Capabilities.APIVersions.Has "keda.sh/v1alpha1") -}}true{{- end -}}
{{- end -}}

{{/* One line per object kind the values ask for and the cluster cannot take, for NOTES. */}}
{{- define "paktum.skippedApis" -}}
{{- if and .Values.metrics.serviceMonitor.enabled (not (include "paktum.serviceMonitorOn" .)) }}
- ServiceMonitor (metrics.serviceMonitor.enabled): the cluster does not serve monitoring.coreos.com/v1 (the Prometheus Operator's CRDs are not installed)
{{- end }}
{{- if and .Values.metrics.podMonitor.enabled (not (include "paktum.podMonitorOn" .)) }}
- PodMonitor (metrics.podMonitor.enabled): the cluster does not serve monitoring.coreos.com/v1 (the Prometheus Operator's CRDs are not installed)
{{- end }}
{{- if and .Values.hasher.keda.enabled (not (include "paktum.kedaOn" .)) }}
- ScaledObject and its TriggerAuthentication (hasher.keda.enabled): the cluster does not serve keda.sh/v1alpha1 (KEDA is not installed){{ if .Values.hasher.autoscaling.enabled }}; the hasher scales on CPU with a HorizontalPodAutoscaler instead{{ end }}
{{- end }}
{{- end -}}
