{{- define "vigil.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else if contains "vigil" .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-vigil" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "vigil.labels" -}}
app.kubernetes.io/name: vigil
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "vigil.selector" -}}
app.kubernetes.io/name: vigil
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "vigil.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{- /*
vigil.seconds turns a Go duration of hours, minutes, seconds and milliseconds ("1m30s",
"10s", "500ms") into whole seconds, rounded up.
*/ -}}
{{- define "vigil.seconds" -}}
{{- $ms := 0 -}}
{{- range $part := regexFindAll "[0-9]+(ms|h|m|s)" . -1 -}}
{{- $n := regexFind "^[0-9]+" $part | atoi -}}
{{- $unit := trimPrefix (regexFind "^[0-9]+" $part) $part -}}
{{- $ms = add $ms (mul $n (get (dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000) $unit)) -}}
{{- end -}}
{{- div (add $ms 999) 1000 -}}
{{- end -}}

{{- /* The memberlist flags shared by the controller and the agent. */ -}}
{{- define "vigil.memberlistArgs" -}}
{{- if .Values.memberlist.enabled }}
- --memberlist-bind=:{{ .Values.memberlist.port }}
- --memberlist-probe-interval={{ .Values.memberlist.probeInterval }}
- --memberlist-probe-timeout={{ .Values.memberlist.probeTimeout }}
- --memberlist-suspicion-mult={{ .Values.memberlist.suspicionMult }}
{{- else }}
- --memberlist-bind=
{{- end }}
{{- end -}}

{{- /* vigil.roles renders the rules controller-gen generated for a component: its
ClusterRole, and a Role per namespace it needs (Events of cluster-scoped objects live in
"default"), each with its binding to the component's ServiceAccount. */ -}}
{{- define "vigil.roles" -}}
{{- $root := .root -}}
{{- $name := printf "%s-%s" (include "vigil.fullname" $root) .component -}}
{{- range $doc := splitList "\n---\n" (printf "\n%s" ($root.Files.Get .file)) }}
{{- $role := fromYaml $doc }}
{{- if $role.kind }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: {{ $role.kind }}
metadata:
  name: {{ $name }}
  {{- with $role.metadata.namespace }}
  namespace: {{ . }}
  {{- end }}
  labels: {{- include "vigil.labels" $root | nindent 4 }}
rules: {{- toYaml $role.rules | nindent 2 }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: {{ $role.kind }}Binding
metadata:
  name: {{ $name }}
  {{- with $role.metadata.namespace }}
  namespace: {{ . }}
  {{- end }}
  labels: {{- include "vigil.labels" $root | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: {{ $role.kind }}
  name: {{ $name }}
subjects:
  - kind: ServiceAccount
    name: {{ $name }}
    namespace: {{ $root.Release.Namespace }}
{{- end }}
{{- end }}
{{- end -}}
