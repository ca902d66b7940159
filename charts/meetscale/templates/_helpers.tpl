{{- define "meetscale.name" -}}meetscale{{- end -}}
{{- /* <release>-meetscale, or the release name alone when it already says meetscale. */ -}}
{{- define "meetscale.fullname" -}}
{{- if contains "meetscale" .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- .Release.Name | trunc 30 | trimSuffix "-" }}-meetscale
{{- end -}}
{{- end -}}
{{- define "meetscale.labels" -}}
app.kubernetes.io/name: meetscale
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}
{{- define "meetscale.selector" -}}
app.kubernetes.io/name: meetscale
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "meetscale.serviceAccountName" -}}
{{- .Values.serviceAccount.name | default (include "meetscale.fullname" .) -}}
{{- end -}}
{{- define "meetscale.poolNamespace" -}}
{{- .Values.poolNamespace | default .Release.Namespace -}}
{{- end -}}
{{- define "meetscale.image" -}}
{{- $i := .Values.image -}}
{{- $ref := printf "%s/%s" $i.registry $i.repository -}}
{{- if $i.digest -}}{{ $ref }}@{{ $i.digest }}{{- else -}}{{ $ref }}:{{ $i.tag | default .Chart.AppVersion }}{{- end -}}
{{- end -}}
{{- /* Names the operator's code and the RBAC both refer to. */ -}}
{{- define "meetscale.webhookService" -}}{{ include "meetscale.fullname" . }}-webhook{{- end -}}
{{- define "meetscale.webhookSecret" -}}{{ include "meetscale.fullname" . }}-webhook-tls{{- end -}}
{{- define "meetscale.webhookConfiguration" -}}{{ include "meetscale.fullname" . }}.meetscale.io{{- end -}}
{{- define "meetscale.lease" -}}{{ include "meetscale.fullname" . }}-leader{{- end -}}
{{- define "meetscale.metricsService" -}}{{ include "meetscale.fullname" . }}-metrics{{- end -}}
{{- /* Label matchers of the operator's series as the chart's ServiceMonitor produces them
(Prometheus Operator: job = the Service's name, namespace = the Service's namespace). */ -}}
{{- define "meetscale.operatorSelector" -}}
{{- .Values.alerts.operatorSelector | default (printf "job=\"%s\", namespace=\"%s\"" (include "meetscale.metricsService" .) .Release.Namespace) -}}
{{- end -}}
