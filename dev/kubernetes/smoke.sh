#!/usr/bin/env bash
# Smoke check of the test apiserver, playing kubelet with curl + jq:
# Namespace, ServiceAccount, Node, Pod -> pods/binding -> pods/status Running (podIP
# 127.0.0.2) -> TokenRequest bound to the pod -> TokenReview -> delete pod (grace 0)
# -> the bound token no longer validates.
#
#   dev/kubernetes/smoke.sh        # starts a throwaway cluster, checks, stops it
#   dev/kubernetes/smoke.sh DIR    # uses the cluster already running in DIR
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [[ $# -ge 1 ]]; then
  DIR="$1"
else
  DIR="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-kube-smoke.XXXXXX")"
  "$HERE/cluster.sh" start "$DIR"
  trap '"$HERE/cluster.sh" stop "$DIR"; rm -rf "$DIR"' EXIT
fi
# shellcheck disable=SC1091
source "$DIR/env"

S="$GATEHOUSE_KUBE_SERVER"
SUFFIX="$(openssl rand -hex 3)"
NS="smoke-$SUFFIX"
SA=sandbox
NODE="smoke-node-$SUFFIX"
POD=sandbox-0

# api METHOD PATH [JSON-BODY] [CONTENT-TYPE]: prints the response body, fails on HTTP >= 400.
api() {
  local method="$1" path="$2" body="${3:-}" ctype="${4:-application/json}" out code
  out="$(mktemp)"
  code="$(curl -sS -o "$out" -w '%{http_code}' --cacert "$GATEHOUSE_KUBE_CA_FILE" \
    -H "Authorization: Bearer $GATEHOUSE_KUBE_TOKEN" -H "Accept: application/json" \
    -X "$method" ${body:+-H "Content-Type: $ctype" --data-binary "$body"} "$S$path")"
  if ((code >= 400)); then
    echo "smoke: $method $path -> HTTP $code" >&2
    cat "$out" >&2
    rm -f "$out"
    return 1
  fi
  cat "$out"
  rm -f "$out"
}

# status METHOD PATH: prints only the HTTP status code.
status() {
  curl -sS -o /dev/null -w '%{http_code}' --cacert "$GATEHOUSE_KUBE_CA_FILE" \
    -H "Authorization: Bearer $GATEHOUSE_KUBE_TOKEN" -X "$1" "$S$2"
}

check() { # check DESCRIPTION EXPECTED ACTUAL
  if [[ "$2" != "$3" ]]; then
    echo "smoke: FAIL $1: expected '$2', got '$3'" >&2
    exit 1
  fi
  echo "ok  $1"
}

# A TokenReview of TOKEN for audience gatehouse; prints the review status.
token_review() {
  api POST /apis/authentication.k8s.io/v1/tokenreviews "$(jq -nc --arg t "$1" \
    '{apiVersion:"authentication.k8s.io/v1",kind:"TokenReview",spec:{token:$t,audiences:["gatehouse"]}}')" | jq -c .status
}

t0=$(date +%s%N)

check "apiserver version" "$(sed -n 's/^KUBE_VERSION=//p' "$HERE/build.sh")" "$(api GET /version | jq -r .gitVersion)"

api POST /api/v1/namespaces "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"$NS\"}}" >/dev/null
echo "ok  namespace $NS created"

api POST "/api/v1/namespaces/$NS/serviceaccounts" \
  "{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\",\"metadata\":{\"name\":\"$SA\"}}" >/dev/null
echo "ok  serviceaccount $SA created"

api POST /api/v1/nodes "$(jq -nc --arg n "$NODE" '{apiVersion:"v1",kind:"Node",metadata:{name:$n,labels:{"gatehouse.dev/test":"true"}}}')" >/dev/null
echo "ok  node $NODE created"

POD_JSON="$(jq -nc --arg sa "$SA" --arg p "$POD" '{
  apiVersion:"v1", kind:"Pod",
  metadata:{name:$p, labels:{app:"sandbox"}},
  spec:{serviceAccountName:$sa, containers:[{name:"main", image:"busybox:latest",
        command:["httpd","-f","-p","8080"], ports:[{containerPort:8080}]}]}}')"
UID_="$(api POST "/api/v1/namespaces/$NS/pods" "$POD_JSON" | jq -r .metadata.uid)"
echo "ok  pod $POD created (uid $UID_)"
check "pod pending before binding" "Pending" "$(api GET "/api/v1/namespaces/$NS/pods/$POD" | jq -r .status.phase)"

# Play scheduler: bind the pod to the node.
api POST "/api/v1/namespaces/$NS/pods/$POD/binding" "$(jq -nc --arg p "$POD" --arg n "$NODE" \
  '{apiVersion:"v1",kind:"Binding",metadata:{name:$p},target:{apiVersion:"v1",kind:"Node",name:$n}}')" >/dev/null
check "pod bound to node" "$NODE" "$(api GET "/api/v1/namespaces/$NS/pods/$POD" | jq -r .spec.nodeName)"

# Play kubelet: report the pod Running on 127.0.0.2.
NOW="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
STATUS_PATCH="$(jq -nc --arg now "$NOW" '{status:{
  phase:"Running", hostIP:"127.0.0.1", hostIPs:[{ip:"127.0.0.1"}], podIP:"127.0.0.2", podIPs:[{ip:"127.0.0.2"}], startTime:$now,
  conditions:[{type:"Ready",status:"True",lastTransitionTime:$now},{type:"ContainersReady",status:"True",lastTransitionTime:$now}],
  containerStatuses:[{name:"main",ready:true,started:true,restartCount:0,image:"busybox:latest",imageID:"",
                      state:{running:{startedAt:$now}}}]}}')"
PATCHED="$(api PATCH "/api/v1/namespaces/$NS/pods/$POD/status" "$STATUS_PATCH" application/strategic-merge-patch+json)"
check "pod status phase" "Running" "$(jq -r .status.phase <<<"$PATCHED")"
check "pod status podIP" "127.0.0.2" "$(jq -r .status.podIP <<<"$PATCHED")"

# TokenRequest bound to the pod (what kubelet would project into it).
TR="$(jq -nc --arg p "$POD" --arg u "$UID_" '{apiVersion:"authentication.k8s.io/v1",kind:"TokenRequest",
  spec:{audiences:["gatehouse"],expirationSeconds:600,boundObjectRef:{apiVersion:"v1",kind:"Pod",name:$p,uid:$u}}}')"
TOKEN="$(api POST "/api/v1/namespaces/$NS/serviceaccounts/$SA/token" "$TR" | jq -r .status.token)"
[[ "$TOKEN" == ey* ]] || { echo "smoke: bad token '$TOKEN'" >&2; exit 1; }
echo "ok  token issued ($(cut -d. -f2 <<<"$TOKEN" | tr '_-' '/+' | base64 -d 2>/dev/null | jq -c '{iss,aud,sub}' 2>/dev/null || echo "${#TOKEN} bytes"))"

REVIEW="$(token_review "$TOKEN")"
check "tokenreview authenticated" "true" "$(jq -r .authenticated <<<"$REVIEW")"
check "tokenreview username" "system:serviceaccount:$NS:$SA" "$(jq -r .user.username <<<"$REVIEW")"
check "tokenreview pod name" "$POD" "$(jq -r '.user.extra["authentication.kubernetes.io/pod-name"][0]' <<<"$REVIEW")"
check "tokenreview pod uid" "$UID_" "$(jq -r '.user.extra["authentication.kubernetes.io/pod-uid"][0]' <<<"$REVIEW")"
check "tokenreview audiences" '["gatehouse"]' "$(jq -c .audiences <<<"$REVIEW")"

# A second bound token, not reviewed before the delete (see below).
TOKEN2="$(api POST "/api/v1/namespaces/$NS/serviceaccounts/$SA/token" "$TR" | jq -r .status.token)"

# Delete the bound pod at once (no kubelet would ever confirm a graceful delete).
api DELETE "/api/v1/namespaces/$NS/pods/$POD" '{"apiVersion":"v1","kind":"DeleteOptions","gracePeriodSeconds":0}' >/dev/null
check "pod gone after delete" "404" "$(status GET "/api/v1/namespaces/$NS/pods/$POD")"

# The bound token stops validating once its pod is gone. kube-apiserver caches successful
# token authentications for 10 s (hard-coded TokenSuccessCacheTTL, no flag), so TOKEN,
# reviewed above, would keep passing for up to 10 s; TOKEN2 was never reviewed, so its
# review must fail as soon as the apiserver has seen the delete (poll briefly).
deleted_at=$(date +%s%N)
for _ in $(seq 1 50); do
  REVIEW="$(token_review "$TOKEN2")"
  [[ "$(jq -r '.authenticated // false' <<<"$REVIEW")" == "false" ]] && break
  sleep 0.1
done
check "tokenreview after pod delete" "false" "$(jq -r '.authenticated // false' <<<"$REVIEW")"
echo "    (rejected $(( ($(date +%s%N) - deleted_at) / 1000000 )) ms after the delete: $(jq -r '.error // ""' <<<"$REVIEW"))"

# Clean up (the namespace stays Terminating: no controller-manager finishes it).
api DELETE "/api/v1/nodes/$NODE" >/dev/null
api DELETE "/api/v1/namespaces/$NS" >/dev/null
echo "ok  cleanup"

echo "smoke: all checks passed in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
