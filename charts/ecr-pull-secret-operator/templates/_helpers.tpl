{{/* Names, labels and small computed values shared by the templates. */}}

{{- define "eps.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "eps.fullname" -}}
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

{{- define "eps.selectorLabels" -}}
app.kubernetes.io/name: {{ include "eps.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "eps.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "eps.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: ecr-pull-secret-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- /* Labels of the chart's own CRDs, besides their app.kubernetes.io/name (deploy/crds/ has it). */ -}}
{{- define "eps.crdLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: crds
app.kubernetes.io/part-of: ecr-pull-secret-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "eps.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "eps.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "eps.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "eps.peeringName" -}}
{{- default (include "eps.fullname" .) .Values.ha.peeringName -}}
{{- end -}}

{{- define "eps.replicas" -}}
{{- if .Values.ha.enabled }}{{ .Values.ha.replicas }}{{ else }}1{{ end -}}
{{- end -}}

{{- /* The operator's own AWS identity settings: what aws.* asks for, checked. */ -}}
{{- define "eps.checkAws" -}}
{{- $web := .Values.aws.webIdentity -}}
{{- if and $web.enabled (not $web.roleArn) -}}
{{- fail "aws.webIdentity.roleArn is required when aws.webIdentity.enabled is true" -}}
{{- end -}}
{{- if and $web.enabled .Values.serviceAccount.irsaRoleArn -}}
{{- fail "set either serviceAccount.irsaRoleArn (EKS) or aws.webIdentity (outside EKS), not both" -}}
{{- end -}}
{{- end -}}
