{{/* Names, labels, images and the settings every Paktum container shares. */}}

{{- define "paktum.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release-scoped base name; components append "-api", "-hasher", ... so it leaves room for them. */}}
{{- define "paktum.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else if contains (include "paktum.name" .) .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "paktum.name" .) | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "paktum.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Call with (dict "ctx" $ "component" "api"). */}}
{{- define "paktum.componentName" -}}
{{- printf "%s-%s" (include "paktum.fullname" .ctx) .component -}}
{{- end -}}

{{- define "paktum.selectorLabels" -}}
app.kubernetes.io/name: {{ include "paktum.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "paktum.labels" -}}
helm.sh/chart: {{ include "paktum.chart" .ctx }}
{{ include "paktum.selectorLabels" . }}
app.kubernetes.io/part-of: paktum
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
An image reference from a component's image block: registry (or global.imageRegistry), repository, and a digest
when given, else the tag, else the chart's appVersion for Paktum's own images.
Call with (dict "ctx" $ "image" .Values.api.image).
*/}}
{{- define "paktum.image" -}}
{{- $registry := .image.registry -}}
{{- if .ctx.Values.global.imageRegistry -}}{{- $registry = .ctx.Values.global.imageRegistry -}}{{- end -}}
{{- $name := .image.repository -}}
{{- if $registry -}}{{- $name = printf "%s/%s" $registry .image.repository -}}{{- end -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $name .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $name (toString (.image.tag | default .ctx.Chart.AppVersion)) -}}
{{- end -}}
{{- end -}}

{{- define "paktum.imagePullSecrets" -}}
{{- with .Values.global.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "paktum.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "paktum.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "paktum.secretName" -}}
{{- default (printf "%s-secrets" (include "paktum.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}

{{- define "paktum.imagesClaimName" -}}
{{- default (printf "%s-images" (include "paktum.fullname" .)) .Values.persistence.images.existingClaim -}}
{{- end -}}

{{- define "paktum.redisUrl" -}}
{{- if .Values.redis.enabled -}}
{{- printf "redis://%s-redis:%d/0" (include "paktum.fullname" .) (int .Values.redis.service.port) -}}
{{- else -}}
{{- required "redis.enabled=false needs redis.external.url" .Values.redis.external.url -}}
{{- end -}}
{{- end -}}

{{/*
The secretKeyRef (name, key) of Redis's password: the release Secret for the in-chart Redis, redis.external.passwordSecret
for an external one; empty when an external Redis has none (or carries it in its url).
*/}}
{{- define "paktum.redisPasswordRef" -}}
{{- if .Values.redis.enabled -}}
name: {{ include "paktum.secretName" . }}
key: {{ .Values.auth.secretKeys.redisPassword }}
{{- else if .Values.redis.external.passwordSecret.name -}}
name: {{ .Values.redis.external.passwordSecret.name }}
key: {{ .Values.redis.external.passwordSecret.key }}
{{- end -}}
{{- end -}}

{{- define "paktum.searchUrl" -}}
{{- if eq .Values.search.backend "sqlite" -}}
sqlite:////data/search.sqlite3
{{- else if .Values.meilisearch.enabled -}}
{{- printf "http://%s-meilisearch:%d" (include "paktum.fullname" .) (int .Values.meilisearch.service.port) -}}
{{- else -}}
{{- required "meilisearch.enabled=false needs meilisearch.external.url" .Values.meilisearch.external.url -}}
{{- end -}}
{{- end -}}

{{- define "paktum.imgproxyUrl" -}}
{{- default (printf "http://%s-imgproxy:%d" (include "paktum.fullname" .) (int .Values.imgproxy.service.port)) .Values.imgproxy.publicUrl -}}
{{- end -}}

{{/*
The PAKTUM_* settings every Paktum container reads (libs/paktum-common/src/paktum_common/settings.py).
Secrets come from the Secret by reference, never as literal values. Call with (dict "ctx" $ "component" "api").
*/}}
{{- define "paktum.commonEnv" -}}
{{- $ctx := .ctx -}}
- name: PAKTUM_DATA_DIR
  value: /data
- name: PAKTUM_REDIS_URL
  value: {{ include "paktum.redisUrl" $ctx | quote }}
{{- with include "paktum.redisPasswordRef" $ctx }}
- name: PAKTUM_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      {{- . | nindent 6 }}
{{- end }}
- name: PAKTUM_SEARCH_URL
  value: {{ include "paktum.searchUrl" $ctx | quote }}
{{- if ne $ctx.Values.search.backend "sqlite" }}
- name: PAKTUM_MEILI_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "paktum.secretName" $ctx }}
      key: {{ $ctx.Values.auth.secretKeys.meilisearchMasterKey }}
{{- end }}
- name: PAKTUM_LOG_FORMAT
  value: {{ $ctx.Values.config.logFormat | quote }}
- name: PAKTUM_LOG_LEVEL
  value: {{ $ctx.Values.config.logLevel | quote }}
- name: PAKTUM_PUBLIC_URL
  value: {{ include "paktum.publicUrl" $ctx | quote }}
{{- with $ctx.Values.config.trustedProxies }}
- name: PAKTUM_TRUSTED_PROXIES
  value: {{ join " " . | quote }}
{{- end }}
- name: PAKTUM_VARIANT_DISTANCE
  value: {{ $ctx.Values.config.variantDistance | quote }}
{{- with $ctx.Values.config.bannedTags }}
- name: PAKTUM_BANNED_TAGS
  value: {{ join " " . | quote }}
{{- end }}
{{- if $ctx.Values.imgproxy.enabled }}
- name: PAKTUM_IMGPROXY_URL
  value: {{ include "paktum.imgproxyUrl" $ctx | quote }}
- name: PAKTUM_IMGPROXY_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "paktum.secretName" $ctx }}
      key: {{ $ctx.Values.auth.secretKeys.imgproxyKey }}
- name: PAKTUM_IMGPROXY_SALT
  valueFrom:
    secretKeyRef:
      name: {{ include "paktum.secretName" $ctx }}
      key: {{ $ctx.Values.auth.secretKeys.imgproxySalt }}
{{- end }}
{{- with $ctx.Values.config.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
The scraper settings the CronJob and the scrape-requests Deployment share, so a request scrapes with the same
sources as the scheduled run. PAKTUM_SCRAPE_SOURCES is left unset when scraper.sources is empty: the built-in
sites then apply, and an extraEnvFrom Secret may carry it instead (with credentials), which an env entry would
override. Call with the root context.
*/}}
{{- define "paktum.scraperEnv" -}}
- name: PAKTUM_SCRAPE_SOURCE
  value: {{ .Values.scraper.source | quote }}
- name: PAKTUM_SCRAPE_MAX_POSTS
  value: {{ .Values.scraper.maxPosts | quote }}
{{- with .Values.scraper.sources }}
- name: PAKTUM_SCRAPE_SOURCES
  value: {{ toJson . | quote }}
{{- end }}
{{- with .Values.scraper.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Volumes every Paktum pod mounts: the shared images volume at /data and a scratch /tmp (the root fs is read-only). */}}
{{- define "paktum.dataVolumes" -}}
- name: data
{{- if .Values.persistence.images.enabled }}
  persistentVolumeClaim:
    claimName: {{ include "paktum.imagesClaimName" . }}
{{- else }}
  emptyDir: {}
{{- end }}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.config.tmpSizeLimit }}
{{- end -}}

{{- define "paktum.dataVolumeMounts" -}}
- name: data
  mountPath: /data
- name: tmp
  mountPath: /tmp
{{- end -}}

{{/* Pod-level scheduling blocks shared by every workload. Call with a component's values. */}}
{{- define "paktum.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
The base of URL and ThumbnailURL. The api never takes it from a client's Host header, so the chart always says:
config.publicUrl; else the api's ingress hostname; else the address NOTES' port-forward opens.
*/}}
{{- define "paktum.publicUrl" -}}
{{- $ingress := .Values.api.ingress -}}
{{- if .Values.config.publicUrl -}}
{{- .Values.config.publicUrl -}}
{{- else if $ingress.enabled -}}
{{- printf "%s://%s" (ternary "https" "http" $ingress.tls) $ingress.hostname -}}
{{- else -}}
http://127.0.0.1:8080
{{- end -}}
{{- end -}}

{{/*
Where the api stages uploads: <PAKTUM_DATA_DIR>/uploads on the shared images volume. It creates the folder
0700 as its own user, so a hasher that runs as another user could not read an upload: refused at render time.
*/}}
{{- define "paktum.uploadStaging" -}}
{{- $api := .Values.api.podSecurityContext.runAsUser -}}
{{- $hasher := .Values.hasher.podSecurityContext.runAsUser -}}
{{- if ne (toString $api) (toString $hasher) -}}
{{- fail (printf "api.podSecurityContext.runAsUser (%v) and hasher.podSecurityContext.runAsUser (%v) differ: the hashers could not read the uploads the api stages" $api $hasher) -}}
{{- end -}}
/data/uploads
{{- end -}}
