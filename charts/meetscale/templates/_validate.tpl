{{- /* Checks values.schema.json cannot express; each names the value and the limit. */ -}}
{{- define "meetscale.validate" -}}
{{- $le := .Values.leaderElection -}}
{{- if and (gt (int .Values.replicaCount) 1) (not $le.enabled) -}}
{{- fail (printf "replicaCount=%d needs leaderElection.enabled=true (only one replica may admit and scale)" (int .Values.replicaCount)) -}}
{{- end -}}
{{- if $le.enabled -}}
{{- if ge (int $le.renewDeadlineSeconds) (int $le.leaseDurationSeconds) -}}
{{- fail (printf "leaderElection.renewDeadlineSeconds=%d must be less than leaderElection.leaseDurationSeconds=%d" (int $le.renewDeadlineSeconds) (int $le.leaseDurationSeconds)) -}}
{{- end -}}
{{- if ge (int $le.retryPeriodSeconds) (int $le.renewDeadlineSeconds) -}}
{{- fail (printf "leaderElection.retryPeriodSeconds=%d must be less than leaderElection.renewDeadlineSeconds=%d" (int $le.retryPeriodSeconds) (int $le.renewDeadlineSeconds)) -}}
{{- end -}}
{{- end -}}
{{- $ports := dict -}}
{{- range $name, $port := dict "metrics.port" .Values.metrics.port "health.port" .Values.health.port "webhook.port" .Values.webhook.port -}}
{{- $key := toString $port -}}
{{- if hasKey $ports $key -}}
{{- fail (printf "%s=%s is already used by %s" $name $key (get $ports $key)) -}}
{{- end -}}
{{- $_ := set $ports $key $name -}}
{{- end -}}
{{- $names := dict -}}
{{- $namespaces := dict -}}
{{- range $i, $a := .Values.agencies -}}
{{- if hasKey $names $a.name -}}
{{- fail (printf "agencies[%d].name=%s: another agency has that name" $i $a.name) -}}
{{- end -}}
{{- $_ := set $names $a.name true -}}
{{- range $a.namespaces -}}
{{- if hasKey $namespaces . -}}
{{- fail (printf "agencies[%d].namespaces: %s already belongs to agency %s" $i . (get $namespaces .)) -}}
{{- end -}}
{{- $_ := set $namespaces . $a.name -}}
{{- end -}}
{{- with $a.quota -}}
{{- if and (or (hasKey . "borrowingLimit") (hasKey . "lendingLimit")) (not .cohort) -}}
{{- fail (printf "agencies[%d].quota: borrowingLimit and lendingLimit need quota.cohort" $i) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
