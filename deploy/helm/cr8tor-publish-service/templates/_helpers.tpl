{{/*
The chart's name, or nameOverride.
*/}}
{{- define "cr8tor-publish.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects: fullnameOverride, else "<release>-<chart name>" (just
the release name when it already contains the chart name). At most 63 characters.
*/}}
{{- define "cr8tor-publish.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "cr8tor-publish.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cr8tor-publish.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cr8tor-publish.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "cr8tor-publish.labels" -}}
helm.sh/chart: {{ include "cr8tor-publish.chart" . }}
{{ include "cr8tor-publish.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: publish-service
app.kubernetes.io/part-of: cr8tor
{{- end }}

{{- define "cr8tor-publish.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "cr8tor-publish.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "cr8tor-publish.image" -}}
{{- printf "%s:%s" .Values.image.repository (toString (default .Chart.AppVersion .Values.image.tag)) }}
{{- end }}

{{/*
One destination's derived names, as YAML: env (its mount variable), mount (its mount path) and
volume (the prefix of its two volumes' names). Called with (dict "d" <destination> "root" $).
*/}}
{{- define "cr8tor-publish.destination" -}}
{{- $lower := lower (toString .d.name) }}
env: {{ printf "TARGET_STORAGE_ACCOUNT_%s_SDE_MNT_PATH" (upper (toString .d.name)) }}
mount: {{ default (printf "%s/%s" (trimSuffix "/" .root.Values.outputsRoot) $lower) .d.mountPath | trimSuffix "/" | quote }}
volume: {{ printf "out-%s" (replace "_" "-" $lower) }}
{{- end }}

{{/*
The names of the environment variables the chart sets itself (extraEnv may not repeat them).
*/}}
{{- define "cr8tor-publish.managedEnv" -}}
{{- $names := list "SECRETS_MNT_PATH" "DLTHUB_PIPELINE_WORKING_DIR" "PUBLISH_BIND_ADDR" "PUBLISH_LOG_FORMAT" "RUST_LOG" "PUBLISH_DUCKDB_MEMORY_LIMIT" "PUBLISH_SHUTDOWN_GRACE_SECS" "PUBLISH_ALLOWED_SOURCE_HOSTS" }}
{{- range .Values.destinations }}
{{- $names = append $names (printf "TARGET_STORAGE_ACCOUNT_%s_SDE_MNT_PATH" (upper (toString .name))) }}
{{- end }}
{{- toJson $names }}
{{- end }}

{{/*
Checks the values the Kubernetes schemas cannot: fails the render with a message naming the
value. Renders nothing.
*/}}
{{- define "cr8tor-publish.validate" -}}
{{- $v := .Values }}
{{- if not (kindIs "slice" $v.destinations) }}
{{- fail "destinations must be a list of {name, stagingClaim, productionClaim}" }}
{{- end }}
{{- if not $v.destinations }}
{{- fail "destinations is empty: list at least LSC and NW" }}
{{- end }}
{{- $seen := dict }}
{{- $mounts := dict }}
{{- range $i, $d := $v.destinations }}
{{- if not (kindIs "map" $d) }}
{{- fail (printf "destinations[%d] must be a map {name, stagingClaim, productionClaim}" $i) }}
{{- end }}
{{- $name := toString (default "" $d.name) }}
{{- if not (regexMatch "^[A-Za-z0-9_]+$" $name) }}
{{- fail (printf "destinations[%d].name %q: use letters, digits and _ only (it becomes TARGET_STORAGE_ACCOUNT_<NAME>_SDE_MNT_PATH)" $i $name) }}
{{- end }}
{{- if gt (len $name) 48 }}
{{- fail (printf "destinations[%d].name %q: at most 48 characters (volume names are limited to 63)" $i $name) }}
{{- end }}
{{- $key := upper $name }}
{{- if hasKey $seen $key }}
{{- fail (printf "destinations[%d].name %q: destination %s is listed twice (names are case-insensitive)" $i $name $key) }}
{{- end }}
{{- $_ := set $seen $key true }}
{{- range $field := list "stagingClaim" "productionClaim" }}
{{- $claim := toString (default "" (index $d $field)) }}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$" $claim) }}
{{- fail (printf "destinations[%d].%s %q: name an existing PersistentVolumeClaim (DNS subdomain: lower-case letters, digits, '-', '.')" $i $field $claim) }}
{{- end }}
{{- end }}
{{- if eq (toString $d.stagingClaim) (toString $d.productionClaim) }}
{{- fail (printf "destinations[%d] (%s): stagingClaim and productionClaim are the same claim %q; staging and production are separate volumes" $i $name (toString $d.stagingClaim)) }}
{{- end }}
{{- $dest := include "cr8tor-publish.destination" (dict "d" $d "root" $) | fromYaml }}
{{- if not (hasPrefix "/" $dest.mount) }}
{{- fail (printf "destinations[%d] (%s): mount path %q must be absolute" $i $name $dest.mount) }}
{{- end }}
{{- if hasKey $mounts $dest.mount }}
{{- fail (printf "destinations[%d] (%s): mount path %q is also %s's" $i $name $dest.mount (index $mounts $dest.mount)) }}
{{- end }}
{{- $_ := set $mounts $dest.mount $key }}
{{- end }}
{{- range $required := list "LSC" "NW" }}
{{- if not (hasKey $seen $required) }}
{{- fail (printf "destinations must include %s: the service always serves LSC and NW, and without their volumes its readiness stays 503" $required) }}
{{- end }}
{{- end }}
{{- if and (not $v.secrets.csi.enabled) (not $v.secrets.existingSecret) }}
{{- fail "secrets: enable secrets.csi or name secrets.existingSecret; the service refuses to start without publishserviceapikey" }}
{{- end }}
{{- if and $v.secrets.csi.enabled (not $v.secrets.csi.secretProviderClass) }}
{{- fail "secrets.csi.secretProviderClass is empty" }}
{{- end }}
{{- if ge (int $v.config.shutdownGraceSeconds) (int $v.terminationGracePeriodSeconds) }}
{{- fail (printf "config.shutdownGraceSeconds (%v) must be less than terminationGracePeriodSeconds (%v): Kubernetes kills the pod when that runs out" $v.config.shutdownGraceSeconds $v.terminationGracePeriodSeconds) }}
{{- end }}
{{- $managed := include "cr8tor-publish.managedEnv" . | fromJsonArray }}
{{- range $e := $v.extraEnv }}
{{- if has (toString $e.name) $managed }}
{{- fail (printf "extraEnv %s: the chart sets it; use the chart's value for it (config.*, destinations, secrets.mountPath, workingDir.mountPath, containerPort)" $e.name) }}
{{- end }}
{{- end }}
{{- end }}
