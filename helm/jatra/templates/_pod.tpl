{{/*
The Deployment of one process (dict root, name, proc: the merged values, args: the `jatra` arguments,
http: whether a Service sends it traffic).
*/}}
{{- define "jatra.deployment" -}}
{{- $root := .root }}
{{- $v := $root.Values }}
{{- $p := .proc }}
{{- $needs := include "jatra.needsOf" . | fromJsonArray }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "jatra.processName" . }}
  labels: {{- include "jatra.labels" . | nindent 4 }}
spec:
  {{- if not (dig "autoscaling" "enabled" false $p) }}
  replicas: {{ $p.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy:
    {{- if eq (default "RollingUpdate" $p.strategy) "Recreate" }}
    type: Recreate
    {{- else }}
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 25%
      maxUnavailable: 0
    {{- end }}
  selector:
    matchLabels: {{- include "jatra.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "jatra.selectorLabels" . | nindent 8 }}
        {{- with $p.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        checksum/config: {{ include "jatra.configChecksum" $root }}
        {{- with $p.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "jatra.serviceAccountName" $root }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      securityContext: {{- include "jatra.podSecurityContext" . | nindent 8 }}
      terminationGracePeriodSeconds: {{ $p.terminationGracePeriodSeconds }}
      {{- with $p.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      {{- with $v.imagePullSecrets }}
      imagePullSecrets: {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- if $p.topologySpread }}
      topologySpreadConstraints:
        {{- range $p.topologySpread }}
        - topologyKey: {{ .topologyKey }}
          maxSkew: {{ .maxSkew }}
          whenUnsatisfiable: {{ .whenUnsatisfiable }}
          labelSelector:
            matchLabels: {{- include "jatra.selectorLabels" $ | nindent 14 }}
          matchLabelKeys: [pod-template-hash]
        {{- end }}
      {{- end }}
      {{- with $p.nodeSelector }}
      nodeSelector: {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $p.tolerations }}
      tolerations: {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $p.affinity }}
      affinity: {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- if include "jatra.logFiles" $root }}
      # native sidecars: they start before the process and stop after it, so they see its last lines
      initContainers:
        {{- if $v.archive.enabled }}
        {{- include "jatra.sidecar" (dict "root" $root "name" "archive" "sidecar" $v.archive "proc" $p) | nindent 8 }}
        {{- end }}
        {{- if $v.logship.enabled }}
        {{- include "jatra.sidecar" (dict "root" $root "name" "logship" "sidecar" $v.logship "proc" $p) | nindent 8 }}
        {{- end }}
      {{- end }}
      containers:
        - name: jatra
          image: {{ include "jatra.image" $root }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          args: {{- toYaml .args | nindent 12 }}
          ports:
            - {name: http, containerPort: 8000, protocol: TCP}
          envFrom:
            - configMapRef: {name: {{ include "jatra.fullname" $root }}-config}
          env:
            {{- include "jatra.podEnv" $root | nindent 12 }}
            {{- include "jatra.connectionEnv" (dict "root" $root "needs" $needs) | nindent 12 }}
          startupProbe:
            httpGet: {path: /health, port: http}
            {{- toYaml $p.probes.startup | nindent 12 }}
          livenessProbe:
            httpGet: {path: /health, port: http}
            {{- toYaml $p.probes.liveness | nindent 12 }}
          readinessProbe:
            httpGet: {path: /ready, port: http}
            {{- toYaml $p.probes.readiness | nindent 12 }}
          {{- if .http }}
          lifecycle:
            # keep serving while the endpoints controller and ingress-nginx drop the pod
            preStop:
              sleep: {seconds: 5}
          {{- end }}
          resources: {{- toYaml $p.resources | nindent 12 }}
          securityContext: {{- include "jatra.securityContext" . | nindent 12 }}
          volumeMounts:
            {{- include "jatra.volumeMounts" . | nindent 12 }}
            {{- if include "jatra.signsTickets" . }}
            {{- include "jatra.ticketKeyMount" . | nindent 12 }}
            {{- end }}
      volumes: {{- include "jatra.volumes" . | nindent 8 }}
{{- end }}

{{/*
A native sidecar following the pod's log file: `jatra worker archive|logship` (dict root, name, sidecar: its
values, proc). It only logs to stdout, and has no readiness probe: an S3 or Elasticsearch outage must not
take the process out of its Service.
*/}}
{{- define "jatra.sidecar" -}}
{{- $v := .root.Values }}
- name: {{ .name }}
  image: {{ include "jatra.image" .root }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  restartPolicy: Always
  args: [worker, {{ .name }}, --port, {{ .sidecar.port | quote }}]
  ports:
    - {name: {{ .name }}, containerPort: {{ .sidecar.port }}, protocol: TCP}
  envFrom:
    - configMapRef: {name: {{ include "jatra.fullname" .root }}-config}
  env:
    {{- if eq .name "archive" }}
    - name: JATRA_S3_ACCESS_KEY
      valueFrom:
        secretKeyRef: {name: {{ $v.s3.existingSecret }}, key: {{ $v.s3.accessKeyKey }}}
    - name: JATRA_S3_SECRET_KEY
      valueFrom:
        secretKeyRef: {name: {{ $v.s3.existingSecret }}, key: {{ $v.s3.secretKeyKey }}}
    - name: JATRA_ARCHIVE_SIGNING_KEY
      valueFrom:
        secretKeyRef: {name: {{ $v.archive.existingSecret }}, key: {{ $v.archive.signingKeyKey }}}
    {{- else }}
    - name: ELASTICSEARCH_PASSWORD
      valueFrom:
        secretKeyRef: {name: {{ $v.elasticsearch.existingSecret }}, key: {{ $v.elasticsearch.passwordKey }}}
    {{- $url := urlParse $v.elasticsearch.url }}
    - name: JATRA_ELASTICSEARCH_URL
      value: {{ printf "%s://%s:$(ELASTICSEARCH_PASSWORD)@%s%s" $url.scheme $v.elasticsearch.username $url.host $url.path | quote }}
    {{- end }}
  startupProbe:
    httpGet: {path: /health, port: {{ .name }}}
    {{- toYaml .proc.probes.startup | nindent 4 }}
  livenessProbe:
    httpGet: {path: /health, port: {{ .name }}}
    {{- toYaml .proc.probes.liveness | nindent 4 }}
  resources: {{- toYaml .sidecar.resources | nindent 4 }}
  securityContext: {{- include "jatra.securityContext" . | nindent 4 }}
  volumeMounts: {{- include "jatra.volumeMounts" . | nindent 4 }}
{{- end }}
