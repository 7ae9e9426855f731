{{/*
The objects beside a process's Deployment. Each takes (dict root, name, proc) like jatra.deployment.
*/}}

{{- define "jatra.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "jatra.processName" . }}
  labels: {{- include "jatra.labels" . | nindent 4 }}
spec:
  type: ClusterIP
  selector: {{- include "jatra.selectorLabels" . | nindent 4 }}
  ports:
    - {name: http, port: 80, targetPort: http, protocol: TCP}
{{- end }}

{{- define "jatra.pdb" -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "jatra.processName" . }}
  labels: {{- include "jatra.labels" . | nindent 4 }}
spec:
  {{- toYaml .proc.pdb | nindent 2 }}
  # a pod that is not ready protects nothing: a drain may evict it
  unhealthyPodEvictionPolicy: AlwaysAllow
  selector:
    matchLabels: {{- include "jatra.selectorLabels" . | nindent 6 }}
{{- end }}

{{- define "jatra.checkRange" -}}
{{- if gt (int .proc.autoscaling.minReplicas) (int .proc.autoscaling.maxReplicas) }}
{{- fail (printf "%s: autoscaling.minReplicas (%v) is above maxReplicas (%v)" .name .proc.autoscaling.minReplicas .proc.autoscaling.maxReplicas) }}
{{- end }}
{{- end }}

{{/* A CPU HPA named <fullname>-<process>, the name kube-state-metrics reports and the dashboards select. */}}
{{- define "jatra.hpa" -}}
{{- include "jatra.checkRange" . }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "jatra.processName" . }}
  labels: {{- include "jatra.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "jatra.processName" . }}
  minReplicas: {{ .proc.autoscaling.minReplicas }}
  maxReplicas: {{ .proc.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ .proc.autoscaling.targetCPUUtilizationPercentage }}
  behavior: {{- toYaml .root.Values.autoscalingBehavior | nindent 4 }}
{{- end }}

{{/*
A KEDA ScaledObject: KEDA creates and owns the HPA (named like the CPU ones), fed by two triggers, the CPU
utilisation and the ready messages of the worker's queue, which KEDA reads from RabbitMQ itself.
*/}}
{{- define "jatra.scaledObject" -}}
{{- include "jatra.checkRange" . }}
{{- $a := .proc.autoscaling }}
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: {{ include "jatra.processName" . }}
  labels: {{- include "jatra.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "jatra.processName" . }}
  minReplicaCount: {{ $a.minReplicas }}
  maxReplicaCount: {{ $a.maxReplicas }}
  pollingInterval: {{ .root.Values.keda.pollingInterval }}
  advanced:
    horizontalPodAutoscalerConfig:
      name: {{ include "jatra.processName" . }}
      behavior: {{- toYaml .root.Values.autoscalingBehavior | nindent 8 }}
  triggers:
    - type: cpu
      metricType: Utilization
      metadata:
        value: {{ $a.targetCPUUtilizationPercentage | quote }}
    - type: rabbitmq
      metadata:
        protocol: amqp
        mode: QueueLength
        queueName: {{ $a.queue.name }}
        value: {{ $a.queue.messagesPerPod | quote }}
      authenticationRef:
        name: {{ include "jatra.fullname" .root }}-rabbitmq
{{- end }}

{{/*
Scrapes every pod of a process on its own /metrics (and its sidecars'), with the labels the generated rules
and dashboards expect: job="jatra", process=<process>, environment=<environment>.
*/}}
{{- define "jatra.podMonitor" -}}
{{- $v := .root.Values }}
apiVersion: monitoring.coreos.com/v1
kind: PodMonitor
metadata:
  name: {{ include "jatra.processName" . }}
  labels:
    {{- include "jatra.labels" . | nindent 4 }}
    {{- with $v.monitoring.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels: {{- include "jatra.selectorLabels" . | nindent 6 }}
  podMetricsEndpoints:
    {{- include "jatra.metricsEndpoint" (dict "root" .root "port" "http" "process" .name) | nindent 4 }}
    {{- range $sidecar := list "archive" "logship" }}
    {{- if (get $v $sidecar).enabled }}
    {{- include "jatra.metricsEndpoint" (dict "root" $.root "port" $sidecar "process" $sidecar) | nindent 4 }}
    {{- end }}
    {{- end }}
{{- end }}

{{- define "jatra.metricsEndpoint" -}}
- port: {{ .port }}
  path: /metrics
  interval: {{ .root.Values.monitoring.podMonitor.interval }}
  scrapeTimeout: {{ .root.Values.monitoring.podMonitor.scrapeTimeout }}
  relabelings:
    - {action: replace, targetLabel: job, replacement: jatra}
    - {action: replace, targetLabel: process, replacement: {{ .process }}}
    - {action: replace, targetLabel: environment, replacement: {{ .root.Values.environment }}}
    - {action: replace, sourceLabels: [__meta_kubernetes_pod_name], targetLabel: pod}
{{- end }}

{{/*
Who may reach a process and what it may reach: the ingress controller (HTTP services), Prometheus (metrics
ports), the payment workers (the simulator); egress to DNS and to the engines the process needs.
*/}}
{{- define "jatra.networkPolicy" -}}
{{- $v := .root.Values }}
{{- $np := $v.networkPolicy }}
{{- $needs := include "jatra.needsOf" . | fromJsonArray }}
{{- $sidecars := list }}
{{- range $s := list "archive" "logship" }}
{{- if (get $v $s).enabled }}
{{- $sidecars = append $sidecars $s }}
{{- end }}
{{- end }}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "jatra.processName" . }}
  labels: {{- include "jatra.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels: {{- include "jatra.selectorLabels" . | nindent 6 }}
  policyTypes: [Ingress{{ if $np.egress.enabled }}, Egress{{ end }}]
  {{- if ne .name "migrate" }}
  ingress:
    {{- if .http }}
    - from: {{- toYaml $np.ingressController | nindent 8 }}
      ports:
        - {port: http, protocol: TCP}
    {{- end }}
    {{- if eq .name "payment-provider" }}
    - from:
        {{- range $client := list "payments" "reconciler" }}
        - podSelector:
            matchLabels: {{- include "jatra.selectorLabels" (dict "root" $.root "name" $client) | nindent 14 }}
        {{- end }}
      ports:
        - {port: http, protocol: TCP}
    {{- end }}
    - from: {{- toYaml $np.prometheus | nindent 8 }}
      ports:
        - {port: http, protocol: TCP}
        {{- range $sidecars }}
        - {port: {{ . }}, protocol: TCP}
        {{- end }}
  {{- end }}
  {{- if $np.egress.enabled }}
  egress:
    {{- toYaml (list $np.egress.dns) | nindent 4 }}
    {{- if or (has "db" $needs) (has "dbadmin" $needs) }}
    {{- toYaml (list $np.egress.postgres) | nindent 4 }}
    {{- end }}
    {{- if has "redis" $needs }}
    {{- toYaml (list $np.egress.redis) | nindent 4 }}
    {{- end }}
    {{- if has "amqp" $needs }}
    {{- toYaml (list $np.egress.rabbitmq) | nindent 4 }}
    {{- end }}
    {{- if has "smtp" $needs }}
    {{- toYaml (list $np.egress.smtp) | nindent 4 }}
    {{- end }}
    {{- if has "provider" $needs }}
    {{- if $v.paymentProvider.simulator.enabled }}
    - to:
        - podSelector:
            matchLabels: {{- include "jatra.selectorLabels" (dict "root" .root "name" "payment-provider") | nindent 14 }}
      ports:
        - {port: http, protocol: TCP}
    {{- else }}
    {{- toYaml (list $np.egress.paymentProvider) | nindent 4 }}
    {{- end }}
    {{- end }}
    {{- if and $v.telemetry.otlpEndpoint (ne .name "migrate") }}
    {{- toYaml (list $np.egress.otlp) | nindent 4 }}
    {{- end }}
    {{- if and $v.archive.enabled (ne .name "migrate") }}
    {{- toYaml (list $np.egress.s3) | nindent 4 }}
    {{- end }}
    {{- if and $v.logship.enabled (ne .name "migrate") }}
    {{- toYaml (list $np.egress.elasticsearch) | nindent 4 }}
    {{- end }}
  {{- end }}
{{- end }}
