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
{{- $names := list "SECRETS_MNT_PATH" "DLTHUB_PIPELINE_WORKING_DIR" "PUBLISH_BIND_ADDR" "PUBLISH_LOG_FORMAT" "RUST_LOG" "PUBLISH_DUCKDB_MEMORY_LIMIT" "PUBLISH_SHUTDOWN_GRACE_SECS" "PUBLISH_ALLOWED_SOURCE_HOSTS" "PUBLISH_BAGIT" "PUBLISH_BAG_SOURCE_ORGANIZATION" }}
{{- /* postgresqlDestination's, whether it is enabled or not: the destination is all or nothing */}}
{{- $names = concat $names (include "cr8tor-publish.postgresqlEnvNames" . | fromJsonArray) }}
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
{{- include "cr8tor-publish.validatePostgresql" . }}
{{- $managed := include "cr8tor-publish.managedEnv" . | fromJsonArray }}
{{- range $e := $v.extraEnv }}
{{- if has (toString $e.name) $managed }}
{{- fail (printf "extraEnv %s: the chart sets it; use the chart's value for it (config.*, destinations, postgresqlDestination, secrets.mountPath, workingDir.mountPath, containerPort)" $e.name) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The PostgreSQL destination's variables (the reference service's names), as a JSON list.
*/}}
{{- define "cr8tor-publish.postgresqlEnvNames" -}}
{{- toJson (list "DESTINATION_POSTGRESQL_HOST" "DESTINATION_POSTGRESQL_PORT" "DESTINATION_POSTGRESQL_DATABASE" "DESTINATION_POSTGRESQL_USERNAME" "DESTINATION_POSTGRESQL_PASSWORD_SECRET_NAME" "DESTINATION_POSTGRESQL_OPAL_READONLY_USERNAME" "DESTINATION_POSTGRESQL_OPAL_READONLY_PASSWORD_SECRET_NAME" "DESTINATION_POSTGRESQL_TLS" "DESTINATION_POSTGRESQL_CA_FILE" "DESTINATION_OPAL_HOST" "DESTINATION_OPAL_USERNAME" "DESTINATION_OPAL_PASSWORD_SECRET_NAME" "DESTINATION_OPAL_NO_SSL_VERIFY" "DESTINATION_OPAL_CA_FILE") }}
{{- end }}

{{/*
The CA files of the PostgreSQL destination that are set, as a JSON list of {field, env, volume,
configMap, secret, key, mountPath, file}: empty when the destination is disabled.
*/}}
{{- define "cr8tor-publish.caFiles" -}}
{{- $pg := .Values.postgresqlDestination }}
{{- $files := list }}
{{- if $pg.enabled }}
{{- $cas := list (dict "field" "postgresqlDestination.ca" "env" "DESTINATION_POSTGRESQL_CA_FILE" "volume" "postgresql-ca" "ca" $pg.ca) (dict "field" "postgresqlDestination.opal.ca" "env" "DESTINATION_OPAL_CA_FILE" "volume" "opal-ca" "ca" $pg.opal.ca) }}
{{- range $c := $cas }}
{{- if or $c.ca.configMap $c.ca.secret }}
{{- $mount := trimSuffix "/" (toString $c.ca.mountPath) }}
{{- $files = append $files (dict "field" $c.field "env" $c.env "volume" $c.volume "configMap" $c.ca.configMap "secret" $c.ca.secret "key" $c.ca.key "mountPath" $mount "file" (printf "%s/%s" $mount $c.ca.key)) }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson $files }}
{{- end }}

{{/*
One user-name variable: value (username) or valueFrom (usernameFrom's secretKeyRef). Called with
(dict "env" <name> "username" <string> "from" <usernameFrom>).
*/}}
{{- define "cr8tor-publish.usernameEnv" -}}
- name: {{ .env }}
{{- if .from }}
  valueFrom:
    secretKeyRef:
      name: {{ .from.secretKeyRef.name | quote }}
      key: {{ .from.secretKeyRef.key | quote }}
{{- else }}
  value: {{ .username | quote }}
{{- end }}
{{- end }}

{{/*
What values.schema.json cannot say of the PostgreSQL destination: one user name source each,
no password file that is the API key, CA files only where the service uses them, CA mounts
that land on no other mount. Renders nothing.
*/}}
{{- define "cr8tor-publish.validatePostgresql" -}}
{{- $v := .Values }}
{{- $pg := $v.postgresqlDestination }}
{{- if $pg.enabled }}
{{- range $u := list (dict "field" "postgresqlDestination" "u" $pg) (dict "field" "postgresqlDestination.readOnly" "u" $pg.readOnly) }}
{{- if and $u.u.username $u.u.usernameFrom }}
{{- fail (printf "%s: set username or usernameFrom, not both" $u.field) }}
{{- end }}
{{- if not (or $u.u.username $u.u.usernameFrom) }}
{{- fail (printf "%s: set username, or usernameFrom.secretKeyRef {name, key}; the service refuses to start without it" $u.field) }}
{{- end }}
{{- end }}
{{- range $s := list (dict "field" "postgresqlDestination.passwordSecretName" "name" $pg.passwordSecretName) (dict "field" "postgresqlDestination.readOnly.passwordSecretName" "name" $pg.readOnly.passwordSecretName) (dict "field" "postgresqlDestination.opal.passwordSecretName" "name" $pg.opal.passwordSecretName) }}
{{- if eq (lower (toString $s.name)) "publishserviceapikey" }}
{{- fail (printf "%s: publishserviceapikey is the API key's file, which the service never reads as a password" $s.field) }}
{{- end }}
{{- end }}
{{- range $c := list (dict "field" "postgresqlDestination.ca" "ca" $pg.ca) (dict "field" "postgresqlDestination.opal.ca" "ca" $pg.opal.ca) }}
{{- if and $c.ca.configMap $c.ca.secret }}
{{- fail (printf "%s: set configMap or secret, not both" $c.field) }}
{{- end }}
{{- end }}
{{- if and (or $pg.ca.configMap $pg.ca.secret) (ne (toString $pg.tls) "verify-full") }}
{{- fail (printf "postgresqlDestination.ca: a CA file is used only with tls: verify-full (tls is %s); the service refuses to start otherwise" $pg.tls) }}
{{- end }}
{{- $others := dict $v.secrets.mountPath "secrets.mountPath" $v.workingDir.mountPath "workingDir.mountPath" "/tmp" "the /tmp emptyDir" }}
{{- range $d := $v.destinations }}
{{- $dest := include "cr8tor-publish.destination" (dict "d" $d "root" $) | fromYaml }}
{{- $_ := set $others (printf "%s/staging" $dest.mount) (printf "destination %s's staging volume" (upper (toString $d.name))) }}
{{- $_ := set $others (printf "%s/production" $dest.mount) (printf "destination %s's production volume" (upper (toString $d.name))) }}
{{- end }}
{{- range $f := include "cr8tor-publish.caFiles" . | fromJsonArray }}
{{- range $path, $what := $others }}
{{- $a := trimSuffix "/" $f.mountPath }}
{{- $b := trimSuffix "/" (toString $path) }}
{{- if or (eq $a $b) (hasPrefix (printf "%s/" $b) $a) (hasPrefix (printf "%s/" $a) $b) }}
{{- fail (printf "%s.mountPath %q overlaps %s (%q): mount the CA file apart" $f.field $f.mountPath $what $path) }}
{{- end }}
{{- end }}
{{- $_ := set $others $f.mountPath $f.field }}
{{- end }}
{{- end }}
{{- end }}
