set -e
cd "$(dirname "$0")/.."
export OPENBLAS_NUM_THREADS=1 ZENREC_LOADTEST_SALT=s
B=runs/serve-loadtest/bprmf-bundle
for i in 1 2; do
for mode in off on; do
  extra=(); [ $mode = on ] && { d=$(mktemp -d); extra=(--request-log $d --request-log-salt-env ZENREC_LOADTEST_SALT); }
  taskset -c 0 .venv/bin/zenrec serve $B --port 18741 --log-level warning "${extra[@]}" & P=$!
  for _ in $(seq 1 300); do .venv/bin/python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:18741/readyz', timeout=1)" 2>/dev/null && break; sleep 0.2; done
  taskset -c 1 .venv/bin/zenrec loadtest http://127.0.0.1:18741 --rate 250 --duration 10 --users-from $B --output /tmp/logcost-$mode-$i.json > /dev/null
  kill $P; wait $P 2>/dev/null || true
done; done
.venv/bin/python - <<'PY'
import json
for m in ("off","on"):
    r=[json.load(open(f"/tmp/logcost-{m}-{i}.json")) for i in (1,2)]
    print(m, [round(x["p99_ms"],2) for x in r], [x["errors"] for x in r], [round(x["achieved_rps"],1) for x in r])
PY
