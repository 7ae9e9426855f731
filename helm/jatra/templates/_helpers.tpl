{{/*
Names, labels and the settings every Jatra pod shares. A "process" is one Deployment: an HTTP service
(`jatra serve <name>`), a worker (`jatra worker <name>`) or the payment provider simulator.
*/}}

{{- define "jatra.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every name: the release name when it starts with "jatra", else "jatra-<release>", so that every
HPA is named jatra-..., which the dashboards and alerts select (kube-state-metrics' horizontalpodautoscaler).
*/}}
{{- define "jatra.fullname" -}}
{{- $name := .Values.fullnameOverride }}
{{- if not $name }}
{{- $name = ternary .Release.Name (printf "jatra-%s" .Release.Name) (hasPrefix "jatra" .Release.Name) }}
{{- end }}
{{- $name | trunc 40 | trimSuffix "-" }}
{{- end }}

{{/* <fullname>-<process>: the name of a process's Deployment, Service, HPA, PDB, monitor and policy. */}}
{{- define "jatra.processName" -}}
{{- printf "%s-%s" (include "jatra.fullname" .root) .name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "jatra.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of the release's pods, whatever the process: the default-deny policy selects these. */}}
{{- define "jatra.instanceLabels" -}}
app.kubernetes.io/name: {{ include "jatra.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Selector labels of one process (dict root, name). */}}
{{- define "jatra.selectorLabels" -}}
{{ include "jatra.instanceLabels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{/* Labels of every object (dict root, name; name may be empty for release-wide objects). */}}
{{- define "jatra.labels" -}}
helm.sh/chart: {{ include "jatra.chart" .root }}
{{ include "jatra.instanceLabels" .root }}
{{- if .name }}
app.kubernetes.io/component: {{ .name }}
{{- end }}
app.kubernetes.io/part-of: jatra
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end }}

{{- define "jatra.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "jatra.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "jatra.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* Whether the processes also write their log to a file, for the archive and logship sidecars. */}}
{{- define "jatra.logFiles" -}}
{{- if or .Values.archive.enabled .Values.logship.enabled }}true{{ end }}
{{- end }}

{{/*
What each process connects to, as in the code (jatra.app.SERVICES and jatra.worker.WORKERS; a test keeps
them equal): db, dblisten (a LISTEN session straight to the primary), redis, amqp, plus jwt (token keys), provider (the payment provider) and smtp.
*/}}
{{- define "jatra.needs" -}}
auth: [db, redis, jwt]
catalog: [db, redis, jwt]
seats: [db, redis, jwt]
bookings: [db, redis, jwt]
timetable: [db, redis]
reaper: [db, redis]
reconciler: [db, redis, provider]
outbox: [db, dblisten, amqp]
payments: [db, redis, amqp, provider]
notifications: [db, redis, amqp, smtp]
payment-provider: []
migrate: [dbadmin]
{{- end }}

{{- define "jatra.needsOf" -}}
{{- $all := include "jatra.needs" . | fromYaml }}
{{- toJson (get $all .name) }}
{{- end }}

{{/* A process's values over the defaults (dict root, proc). */}}
{{- define "jatra.merged" -}}
{{- toJson (mergeOverwrite (deepCopy .root.Values.defaults) (deepCopy .proc)) }}
{{- end }}

{{/* Hardening every container gets: non-root uid 10001 (the image's user), nothing to escalate to. */}}
{{- define "jatra.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "jatra.securityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Connection settings composed in the pod: the credentials come from the engines' Secrets as variables, and
Kubernetes expands $(VAR) in the URL, so no password is ever in a value or a ConfigMap. (dict root, needs)
*/}}
{{- define "jatra.connectionEnv" -}}
{{- $v := .root.Values }}
{{- if or (has "db" .needs) (has "dbadmin" .needs) }}
- name: DATABASE_USERNAME
  valueFrom:
    secretKeyRef: {name: {{ $v.postgres.existingSecret }}, key: {{ $v.postgres.usernameKey }}}
- name: DATABASE_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ $v.postgres.existingSecret }}, key: {{ $v.postgres.passwordKey }}}
{{- end }}
{{- if has "db" .needs }}
- name: JATRA_DATABASE_URL
  value: {{ printf "postgresql+asyncpg://$(DATABASE_USERNAME):$(DATABASE_PASSWORD)@%s:%d/%s" $v.postgres.host (int $v.postgres.port) $v.postgres.database | quote }}
{{- end }}
{{- if has "dblisten" .needs }}
{{- /* a LISTEN session needs a connection of its own: to the primary, not through the Pooler */}}
- name: JATRA_DATABASE_LISTEN_URL
  value: {{ printf "postgresql+asyncpg://$(DATABASE_USERNAME):$(DATABASE_PASSWORD)@%s:%d/%s" $v.postgres.adminHost (int $v.postgres.port) $v.postgres.database | quote }}
{{- end }}
{{- if has "dbadmin" .needs }}
- name: JATRA_DATABASE_ADMIN_URL
  value: {{ printf "postgresql+asyncpg://$(DATABASE_USERNAME):$(DATABASE_PASSWORD)@%s:%d/%s" $v.postgres.adminHost (int $v.postgres.port) $v.postgres.database | quote }}
{{- end }}
{{- if has "redis" .needs }}
{{- $auth := "" }}
{{- if $v.redis.existingSecret }}
{{- $auth = ":$(REDIS_PASSWORD)@" }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ $v.redis.existingSecret }}, key: {{ $v.redis.passwordKey }}}
{{- end }}
- name: JATRA_REDIS_URL
  value: {{ printf "%s://%s%s:%d/%d" (ternary "rediss" "redis" $v.redis.tls) $auth $v.redis.host (int $v.redis.port) (int $v.redis.db) | quote }}
{{- end }}
{{- if has "amqp" .needs }}
- name: AMQP_USERNAME
  valueFrom:
    secretKeyRef: {name: {{ $v.rabbitmq.existingSecret }}, key: {{ $v.rabbitmq.usernameKey }}}
- name: AMQP_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ $v.rabbitmq.existingSecret }}, key: {{ $v.rabbitmq.passwordKey }}}
- name: JATRA_AMQP_URL
  value: {{ printf "%s://$(AMQP_USERNAME):$(AMQP_PASSWORD)@%s:%d/%s" (ternary "amqps" "amqp" $v.rabbitmq.tls) $v.rabbitmq.host (int $v.rabbitmq.port) (urlquery $v.rabbitmq.vhost) | quote }}
{{- end }}
{{- if has "jwt" .needs }}
- name: JATRA_JWT_SECRET
  valueFrom:
    secretKeyRef: {name: {{ $v.jwt.existingSecret }}, key: {{ $v.jwt.key }}}
{{- end }}
{{- end }}

{{/* The pod's own name, and the log file the sidecars follow (one source per pod in the archive). */}}
{{- define "jatra.podEnv" -}}
- name: POD_NAME
  valueFrom:
    fieldRef: {fieldPath: metadata.name}
{{- if include "jatra.logFiles" . }}
- name: JATRA_LOG_FILE
  value: /var/log/jatra/$(POD_NAME).log
{{- end }}
{{- end }}

{{- define "jatra.volumeMounts" -}}
- {name: tmp, mountPath: /tmp}
- {name: state, mountPath: /var/lib/jatra}
- {name: logs, mountPath: /var/log/jatra}
{{- end }}

{{/*
Whether a process signs or verifies e-tickets (dict name): the callers of jatra.infra.tickets.signing_key,
the bookings service (renders and verifies tickets) and the notifications worker (sends them); a test keeps
this list equal to the code's. They must all hold the same key, or a ticket signed by one pod fails to
verify on another.
*/}}
{{- define "jatra.signsTickets" -}}
{{- if has .name (list "bookings" "notifications") }}true{{ end }}
{{- end }}

{{/*
The e-ticket key, read-only, as the one file where the code reads it (STATE_DIR/secrets/tickets.ed25519.pem,
STATE_DIR being /var/lib/jatra): a subPath mount, so the rest of the state directory stays a writable
emptyDir. The key is read once at start: after changing the Secret, restart the processes that mount it.
*/}}
{{- define "jatra.ticketKeyMount" -}}
- name: ticket-key
  mountPath: /var/lib/jatra/secrets/tickets.ed25519.pem
  subPath: tickets.ed25519.pem
  readOnly: true
{{- end }}

{{/*
The only writable places, and the e-ticket key where it is needed (dict root, name, proc: the merged
values).
*/}}
{{- define "jatra.volumes" -}}
- name: tmp
  emptyDir: {sizeLimit: {{ .proc.volumes.tmp }}}
- name: state
  emptyDir: {sizeLimit: {{ .proc.volumes.state }}}
- name: logs
  emptyDir: {sizeLimit: {{ .proc.volumes.logs }}}
{{- if include "jatra.signsTickets" . }}
- name: ticket-key
  secret:
    secretName: {{ .root.Values.tickets.existingSecret }}
    items:
      - {key: {{ .root.Values.tickets.signingKeyKey }}, path: tickets.ed25519.pem}
    defaultMode: 288  # 0440 (decimal reads the same in YAML 1.1 and 1.2): the pods' group, fsGroup 10001
{{- end }}
{{- end }}

{{- define "jatra.configChecksum" -}}
{{- include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- end }}
