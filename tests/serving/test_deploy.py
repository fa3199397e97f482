"""Deployment files: the Kubernetes manifests validate against a pinned Kubernetes version's
schemas (kubernetes-validate, strict: unknown fields are errors), they agree with each other,
the KEDA/HPA output of ``zenrec traffic plan`` is checked as far as schemas exist for it, and
the Dockerfile is checked by parsing it (Docker itself is not available to the test suite).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

kv = pytest.importorskip("kubernetes_validate")
yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
#: Kubernetes version the manifests are validated against (raise it deliberately).
K8S_VERSION = "1.33.0"


#: Custom resources (their schemas ship with the operator, not with Kubernetes).
CRDS = {"PodMonitor": "monitoring.coreos.com/v1"}


def _docs(root: Path = K8S) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for f in sorted(root.glob("*.yaml")):
        if f.name in ("kustomization.yaml", "deployment-patch.yaml"):
            continue
        for doc in yaml.safe_load_all(f.read_text()):
            out[doc["kind"]] = doc
    return out


def _bundle_config() -> dict[str, str]:
    """The literals of the ``zenrec-bundle`` ConfigMap that kustomization.yaml generates."""
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    (gen,) = [g for g in kust["configMapGenerator"] if g["name"] == "zenrec-bundle"]
    return dict(x.split("=", 1) for x in gen["literals"])


def _pvc_variant() -> dict[str, Any]:
    """The base Deployment with the pvc/ overlay's strategic-merge patch applied by hand
    (initContainers deleted by name; the bundle volume and mount replaced by name)."""
    dep = copy.deepcopy(_docs()["Deployment"])
    patch = yaml.safe_load((K8S / "pvc" / "deployment-patch.yaml").read_text())
    assert patch["metadata"]["name"] == dep["metadata"]["name"]
    pod, ppod = dep["spec"]["template"]["spec"], patch["spec"]["template"]["spec"]
    gone = {c["name"] for c in ppod["initContainers"] if c.get("$patch") == "delete"}
    assert gone == {c["name"] for c in pod["initContainers"]}
    pod["initContainers"] = [c for c in pod["initContainers"] if c["name"] not in gone]
    if not pod["initContainers"]:
        del pod["initContainers"]
    for pv in ppod["volumes"]:
        (v,) = [v for v in pod["volumes"] if v["name"] == pv["name"]]
        for key, value in pv.items():
            if value is None:
                v.pop(key)
            else:
                v[key] = value
    for pc in ppod["containers"]:
        (c,) = [c for c in pod["containers"] if c["name"] == pc["name"]]
        for pm in pc["volumeMounts"]:
            (m,) = [m for m in c["volumeMounts"] if m["mountPath"] == pm["mountPath"]]
            m.update(pm)
    return dep


def test_every_manifest_validates_against_the_pinned_kubernetes_version() -> None:
    docs = _docs()
    assert set(docs) == {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        *CRDS,
    }
    pvc = _docs(K8S / "pvc")
    assert set(pvc) == {"PersistentVolumeClaim", "Job"}
    docs = {**docs, **pvc, "Deployment (pvc/ variant)": _pvc_variant()}
    for kind, doc in docs.items():
        if kind in CRDS:
            assert doc["apiVersion"] == CRDS[kind]
            with pytest.raises(kv.SchemaNotFoundError):
                kv.validate(doc, K8S_VERSION, strict=True)
            continue
        assert kv.validate(doc, K8S_VERSION, strict=True) == K8S_VERSION[:4], kind


def test_the_validator_rejects_a_broken_manifest() -> None:
    # The check above would be worthless if the validator accepted anything.
    dep = copy.deepcopy(_docs()["Deployment"])
    dep["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/x"
    with pytest.raises(kv.ValidationError):
        kv.validate(dep, K8S_VERSION, strict=True)
    dep = copy.deepcopy(_docs()["Deployment"])
    dep["spec"]["revisionHistoryLimit"] = "five"
    with pytest.raises(kv.ValidationError):
        kv.validate(dep, K8S_VERSION, strict=True)


def test_manifests_agree_with_each_other_and_the_service_contract() -> None:
    d = _docs()
    dep, svc, pdb, hpa, netpol = (
        d["Deployment"],
        d["Service"],
        d["PodDisruptionBudget"],
        d["HorizontalPodAutoscaler"],
        d["NetworkPolicy"],
    )
    labels = dep["spec"]["template"]["metadata"]["labels"]
    name = dep["metadata"]["name"]
    for selector in (
        dep["spec"]["selector"]["matchLabels"],
        svc["spec"]["selector"],
        pdb["spec"]["selector"]["matchLabels"],
    ):
        assert selector.items() <= labels.items()
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": name,
    }
    # the autoscaler owns the replica count; its minimum leaves the PDB room for a drain
    assert "replicas" not in dep["spec"]
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]
    from zenrec.traffic.plan import KEDA_MIN_REPLICAS

    assert pdb["spec"]["minAvailable"] < KEDA_MIN_REPLICAS

    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    port = c["ports"][0]
    assert svc["spec"]["ports"][0]["targetPort"] == port["name"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    # non-root, read-only everywhere
    assert (
        pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] > 0
    )
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    (bundle,) = [m for m in c["volumeMounts"] if m["mountPath"] == "/bundle"]
    assert bundle["readOnly"] is True
    # the bundle: fetched by hash into an emptyDir by the init container, and pinned
    (vol,) = [v for v in pod["volumes"] if v["name"] == bundle["name"]]
    assert set(vol) == {"name", "emptyDir"}
    (init,) = pod["initContainers"]
    assert init["image"] == c["image"]  # the image's entrypoint is `zenrec serve /bundle`
    assert init["args"][init["args"].index("--fetch") + 1] == "$(BUNDLE_URL)"
    assert "--fetch-only" in init["args"]
    assert [m for m in init["volumeMounts"] if m["name"] == vol["name"]] == [
        {"name": vol["name"], "mountPath": "/bundle"}
    ]
    assert init["securityContext"]["readOnlyRootFilesystem"] is True
    cfg = _bundle_config()
    assert set(cfg) == {"BUNDLE_URL", "ZENREC_EXPECT_VERSION"}
    assert re.fullmatch(r"[0-9a-f]{16,64}", cfg["ZENREC_EXPECT_VERSION"])
    for container in (init, c):  # both read the pin from the generated ConfigMap
        assert {"configMapRef": {"name": "zenrec-bundle"}} in container["envFrom"]
    # PVC alternative: the same Deployment reads /bundles/<version>/ of a shared claim
    pvc_dep = _pvc_variant()["spec"]["template"]["spec"]
    (pvc_mount,) = [m for m in pvc_dep["containers"][0]["volumeMounts"] if m["name"] == "bundle"]
    assert pvc_mount["readOnly"] is True and pvc_mount["subPathExpr"] == "$(ZENREC_EXPECT_VERSION)"
    (pvc_vol,) = [v for v in pvc_dep["volumes"] if v["name"] == "bundle"]
    claim = _docs(K8S / "pvc")["PersistentVolumeClaim"]["metadata"]["name"]
    assert pvc_vol == {
        "name": "bundle",
        "persistentVolumeClaim": {"claimName": claim, "readOnly": True},
    }
    job = _docs(K8S / "pvc")["Job"]["spec"]["template"]["spec"]
    assert job["containers"][0]["command"][2] == "/bundles/$(ZENREC_EXPECT_VERSION)"
    # hardening: no admin key (so no admin route), one port, reachable as the policy says
    assert not any("api-key" in a for a in c["args"])
    assert netpol["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert {x["port"] for r in netpol["spec"]["ingress"] for x in r["ports"]} == {port["name"]}
    assert set(netpol["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    # one serving process per pod at its load-tested capacity: one CPU requested, and the
    # thread policy the capacity was measured with
    assert c["resources"]["requests"]["cpu"] == "1"
    assert {"name": "ZENREC_THREADS", "value": "1"} in c["env"]
    assert "--host" in c["args"] and c["args"][c["args"].index("--host") + 1] == "0.0.0.0"
    # zero-downtime rollout
    assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_kustomization_lists_every_manifest() -> None:
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kust["resources"])
    on_disk = {f.name for f in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk
    over = yaml.safe_load((K8S / "pvc" / "kustomization.yaml").read_text())
    patches = {p["path"] for p in over["patches"]}
    on_disk = {f.name for f in (K8S / "pvc").glob("*.yaml")} - {"kustomization.yaml"}
    assert set(over["resources"]) == {"../"} | (on_disk - patches) and patches <= on_disk


@pytest.fixture(scope="module")
def keda_plan() -> Any:
    pd = pytest.importorskip("pandas")
    from zenrec.traffic.plan import PlanConfig, plan_replicas

    ts = pd.date_range("2026-12-01", periods=48, freq="1h", tz="UTC")
    load = [100.0 if 8 <= t.hour < 20 else 20.0 for t in ts]  # requests/s, a day pattern
    frame = pd.DataFrame({"ts": ts, "mean": load, "hi80": load, "hi95": load})
    cfg = PlanConfig(capacity_rps=40, value_unit="rate", min_replicas=1, max_replicas=10)
    return plan_replicas(frame, 3600, 20.0, cfg)


@pytest.fixture(scope="module")
def keda_yaml(keda_plan: Any) -> dict[str, Any]:
    from zenrec.traffic.plan import keda_scaledobject

    text = keda_scaledobject(keda_plan, name="zenrec-serve", timezone="UTC")
    doc: dict[str, Any] = yaml.safe_load(text)
    return doc


def test_traffic_plan_keda_scaledobject_targets_the_deployment(keda_yaml: dict[str, Any]) -> None:
    so = keda_yaml
    # KEDA's ScaledObject is a CRD: no schema ships with Kubernetes, so the validator cannot
    # check it as a whole ...
    with pytest.raises(kv.SchemaNotFoundError):
        kv.validate(so, K8S_VERSION, strict=True)
    assert so["apiVersion"] == "keda.sh/v1alpha1" and so["kind"] == "ScaledObject"
    assert so["spec"]["scaleTargetRef"]["name"] == _docs()["Deployment"]["metadata"]["name"]
    lo, hi = so["spec"]["minReplicaCount"], so["spec"]["maxReplicaCount"]
    assert isinstance(lo, int) and isinstance(hi, int) and 0 <= lo <= hi
    kinds = [t["type"] for t in so["spec"]["triggers"]]
    assert kinds[0] == "prometheus" and "cron" in kinds
    for t in so["spec"]["triggers"]:
        assert all(isinstance(v, str) for v in t["metadata"].values())  # KEDA wants strings
        if t["type"] == "cron":
            for key in ("start", "end"):
                assert re.fullmatch(r"\d+ \d+ \d+ \d+ \*", t["metadata"][key])
            assert 1 <= int(t["metadata"]["desiredReplicas"]) <= hi
        else:
            assert float(t["metadata"]["threshold"]) == pytest.approx(40 * 0.7)


def test_traffic_plan_keda_hpa_part_validates_as_an_hpa(keda_yaml: dict[str, Any]) -> None:
    # ... but KEDA turns the ScaledObject into an autoscaling/v2 HPA and passes
    # advanced.horizontalPodAutoscalerConfig through: that part is validated against the HPA
    # schema of the pinned version.
    so = keda_yaml["spec"]
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "keda-hpa-zenrec-serve"},
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": so["scaleTargetRef"]["name"],
            },
            "minReplicas": max(1, so["minReplicaCount"]),
            "maxReplicas": so["maxReplicaCount"],
            "behavior": so["advanced"]["horizontalPodAutoscalerConfig"]["behavior"],
            "metrics": [
                {
                    "type": "External",
                    "external": {
                        "metric": {"name": "s0-prometheus"},
                        "target": {
                            "type": "AverageValue",
                            "averageValue": so["triggers"][0]["metadata"]["threshold"],
                        },
                    },
                }
            ],
        },
    }
    assert kv.validate(hpa, K8S_VERSION, strict=True) == K8S_VERSION[:4]


# ------------------------------------------------------------------------------------------
# The KEDA query against what the service really exports (a live scrape)

_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}")
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"\s*,?')


def _selectors(query: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """Every ``metric{label op "value", ...}`` vector selector of a PromQL expression."""
    out = []
    for name, body in _SELECTOR.findall(query):
        matchers = _MATCHER.findall(body)
        assert "".join(f'{k}{op}"{v}",' for k, op, v in matchers).rstrip(",") == re.sub(
            r"\s", "", body
        ).rstrip(","), f"unparsed matcher in {body!r}"
        out.append((name, matchers))
    return out


def _matches(labels: dict[str, str], matchers: list[tuple[str, str, str]]) -> bool:
    for key, op, value in matchers:
        have = labels.get(key, "")
        ok = {
            "=": have == value,
            "!=": have != value,
            "=~": re.fullmatch(value, have) is not None,
            "!~": re.fullmatch(value, have) is None,
        }[op]
        if not ok:
            return False
    return True


def _target_labels(namespace: str, pod: str) -> dict[str, str]:
    """The labels a Prometheus-Operator PodMonitor scrape adds to every series of a pod of the
    Deployment: discovery's namespace/pod/container, and podTargetLabels copied from the pod
    template's labels with the operator's name sanitising (``.``/``/`` -> ``_``)."""
    d = _docs()
    pm, dep = d["PodMonitor"], d["Deployment"]
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert pm["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    ports = {x["name"] for x in container["ports"]}
    assert {e["port"] for e in pm["spec"]["podMetricsEndpoints"]} <= ports
    assert all(e["path"] == "/metrics" for e in pm["spec"]["podMetricsEndpoints"])
    out = {"namespace": namespace, "pod": pod, "container": container["name"]}
    for name in pm["spec"].get("podTargetLabels", []):
        if name in pod_labels:
            out[re.sub(r"[^a-zA-Z0-9_]", "_", name)] = pod_labels[name]
    return out


def _selected(query: str, scrape: str, namespace: str) -> float:
    """Sum of the scraped samples the query's selectors pick, with the PodMonitor's labels."""
    from prometheus_client.parser import text_string_to_metric_families

    extra = _target_labels(namespace, "zenrec-serve-5d9c7b7f4-x2x8q")
    samples = [s for f in text_string_to_metric_families(scrape) for s in f.samples]
    total = 0.0
    for name, matchers in _selectors(query):
        for smp in samples:
            if smp.name == name and _matches({**smp.labels, **extra}, matchers):
                total += smp.value
    return total


@pytest.mark.integration
def test_keda_query_selects_the_served_users_of_a_live_server(bundles, keda_plan) -> None:
    import httpx
    from live import live_server

    from zenrec.traffic.plan import keda_scaledobject

    text = keda_scaledobject(
        keda_plan,
        name=_docs()["Deployment"]["metadata"]["name"],
        namespace="recs",
        prometheus_address="http://prometheus.example:9090",
    )
    (trigger,) = [t for t in yaml.safe_load(text)["spec"]["triggers"] if t["type"] == "prometheus"]
    meta = trigger["metadata"]
    assert trigger["metricType"] == "AverageValue"  # threshold per replica; fallback needs it
    assert meta["serverAddress"] == "http://prometheus.example:9090"
    assert meta["ignoreNullValues"] == "false"
    query = meta["query"]
    with live_server(bundles["ease"]) as srv, httpx.Client(base_url=srv.url) as c:
        assert c.get("/healthz").status_code == 200  # probes and scrapes count no users
        assert c.post("/v1/recommend", json={"user_id": 1, "k": 5}).status_code == 200
        assert c.post("/v1/recommend", json={"user_id": 1, "k": 5000}).status_code == 422
        batch = {"requests": [{"user_id": u, "k": 5} for u in (1, 2, 3)]}
        assert c.post("/v1/recommend/batch", json=batch).status_code == 200
        scrape = c.get("/metrics").text
    # one single request and a batch of three users; the refused request and probes are not load
    assert _selected(query, scrape, "recs") == 4.0
    # the selector really filters: another namespace, or the old Service-label query, selects
    # nothing (KEDA would read 0 and never scale)
    assert _selected(query, scrape, "other") == 0.0
    old = 'sum(rate(zenrec_requests_total{service="zenrec-serve"}[2m]))'
    assert _selected(old, scrape, "recs") == 0.0


def test_keda_object_has_a_fallback_and_the_cli_flags(tmp_path, keda_plan) -> None:
    from zenrec.traffic.plan import KEDA_MIN_REPLICAS, keda_scaledobject

    custom = 'sum(rate(my_metric{job="x"}[1m]))'
    so = yaml.safe_load(
        keda_scaledobject(keda_plan, prometheus_query=custom, prometheus_address="http://p:9")
    )
    assert so["spec"]["triggers"][0]["metadata"]["query"] == custom
    assert so["spec"]["minReplicaCount"] == KEDA_MIN_REPLICAS  # the plan's min is 1
    fb = so["spec"]["fallback"]
    assert fb["failureThreshold"] >= 1
    assert KEDA_MIN_REPLICAS <= fb["replicas"] <= so["spec"]["maxReplicaCount"]
    assert fb["replicas"] == keda_plan.peak_replicas


# ------------------------------------------------------------------------------------------
# Dockerfile (parsed: no Docker daemon here)


def _instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)  # line continuations
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        op, _, rest = line.partition(" ")
        out.append((op.upper(), rest.strip()))
    return out


def _final_stage(ins: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (op, _) in enumerate(ins) if op == "FROM")
    return ins[last_from:]


def test_dockerfile_runs_as_non_root_with_a_healthcheck() -> None:
    ins = _instructions()
    final = _final_stage(ins)
    assert "slim" in final[0][1]
    users = [rest for op, rest in final if op == "USER"]
    assert users, "the final stage must switch to a non-root USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) > 0  # numeric, so runAsNonRoot can verify it
    k8s_uid = _docs()["Deployment"]["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
    assert int(uid) == k8s_uid
    (hc,) = [rest for op, rest in final if op == "HEALTHCHECK"]
    assert "/healthz" in hc and "--timeout" in hc
    entry = json.loads(next(rest for op, rest in final if op == "ENTRYPOINT"))
    assert entry == ["zenrec", "serve", "/bundle"]
    cmd = next(rest for op, rest in final if op == "CMD")
    assert "0.0.0.0" in cmd
    assert any(op == "VOLUME" and "/bundle" in rest for op, rest in final)
    env = " ".join(rest for op, rest in final if op == "ENV")
    assert re.search(r"\bZENREC_THREADS=1\b", env)  # the CLI would override OPENBLAS_* alone


def test_dockerfile_and_dockerignore_carry_no_secrets_or_bundles() -> None:
    ins = _instructions()
    secret = re.compile(r"(?i)(password|secret|token|api[_-]?key|aws_|private)")
    for op, rest in ins:
        if op in ("ENV", "ARG", "LABEL"):
            assert not secret.search(rest), f"{op} {rest}"
    assert not any(op == "ADD" for op, _ in ins)  # COPY only: no remote fetches
    for op, rest in ins:
        if op == "COPY" and not rest.startswith("--from="):
            *sources, _dest = rest.split()
            # only the package sources: never the whole context (bundles, .env, runs/)
            assert set(sources) <= {"requirements.lock", "pyproject.toml", "README.md", "src"}
    ignored = (ROOT / ".dockerignore").read_text().split()
    for must in (".git", ".venv", "runs", "*.safetensors", ".env"):
        assert must in ignored


def test_dockerfile_is_reproducible_and_deployed_by_digest() -> None:
    ins = _instructions()
    froms = [rest for op, rest in ins if op == "FROM"]
    assert len(froms) == 2
    for f in froms:
        # the base by digest, a slim CPython 3.11 on Debian bookworm
        assert re.fullmatch(r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}( AS \w+)?", f), f
    assert len({f.split()[0] for f in froms}) == 1  # build and run on the same bytes
    copies = [rest for op, rest in ins if op == "COPY"]
    assert any("requirements.lock" in c.split()[:-1] for c in copies)
    installs = [rest for op, rest in ins if op == "RUN" and "pip install" in rest]
    (run,) = installs
    pips = re.findall(r"pip install[^;&|]*", run)
    assert pips and all("-c requirements.lock" in x for x in pips), pips
    # torch comes from the build arg's index; its default is the PyTorch CPU wheel index
    args = dict(rest.partition("=")[::2] for op, rest in ins if op == "ARG" and "=" in rest)
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    (torch_pip,) = [x for x in pips if "torch" in x.split()]
    assert '--index-url "${TORCH_INDEX_URL}"' in torch_pip
    header = (ROOT / "Dockerfile").read_text().split("\nFROM", 1)[0]
    assert "GPU image" in header and "whl/cu" in header  # the documented GPU variant
    # the manifests deploy the image by digest
    (c,) = _docs()["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert re.fullmatch(r"[a-z0-9./-]+@sha256:[0-9a-f]{64}", c["image"]), c["image"]
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    (img,) = kust["images"]
    assert img["name"] == c["image"].split("@")[0]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", img["digest"]) and "newTag" not in img
