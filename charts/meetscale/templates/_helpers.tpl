{{- define "meetscale.name" -}}meetscale{{- end -}}
{{- define "meetscale.fullname" -}}{{ .Release.Name | trunc 40 | trimSuffix "-" }}-meetscale{{- end -}}
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
