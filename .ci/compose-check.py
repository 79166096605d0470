"""What the compose-spec schema cannot see in docker-compose.yml: every secret, network, volume
and service a service names exists; every file it mounts exists; the proxy is the only other
member of the network vigil trusts; vigil's issuer is the proxy's published address; each vigil
secret file setting names a secret the service receives; Prometheus scrapes exactly the vigil
nodes; the Caddyfile's default upstreams are the vigil nodes; the dashboard is valid JSON."""

import ipaddress
import json
import pathlib
import re
import sys

from ruamel.yaml import YAML

root = pathlib.Path(__file__).resolve().parent.parent
compose = YAML(typ="safe").load((root / "docker-compose.yml").read_text())
errors = []


def err(msg):
    errors.append(msg)


services = compose["services"]
top = {k: set((compose.get(k) or {}).keys()) for k in ("secrets", "networks", "volumes")}
for name, s in services.items():
    for sec in s.get("secrets", []):
        sec = sec if isinstance(sec, str) else sec["source"]
        if sec not in top["secrets"]:
            err(f"{name}: secret {sec} is not defined")
    nets = s.get("networks", [])
    for net in nets if isinstance(nets, list) else nets.keys():
        if net not in top["networks"]:
            err(f"{name}: network {net} is not defined")
    deps = s.get("depends_on", [])
    for dep in deps if isinstance(deps, list) else deps.keys():
        if dep not in services:
            err(f"{name}: depends on unknown service {dep}")
    for v in s.get("volumes", []):
        src = v.split(":")[0]
        if src.startswith("."):
            if not (root / src).exists():
                err(f"{name}: mounts {src}, which does not exist")
        elif src not in top["volumes"]:
            err(f"{name}: volume {src} is not defined")
    if "build" in s and not (root / s["build"] / "Dockerfile").exists():
        err(f"{name}: no Dockerfile in build context {s['build']}")
for sec, spec in (compose.get("secrets") or {}).items():
    if "file" in spec and not (root / spec["file"]).exists():
        err(f"secret {sec}: {spec['file']} does not exist")

vigil = {n: s for n, s in services.items() if s.get("image", "").startswith("vigil")}
if len(vigil) < 2:
    err("fewer than two vigil nodes")
proxy = services.get("proxy", {})
# The network the proxy reaches the nodes on, and its address range.
proxy_nets = {
    net: c.get("subnet")
    for net in proxy.get("networks", [])
    for c in ((compose["networks"].get(net) or {}).get("ipam") or {}).get("config", [])
}
if len(proxy_nets) != 1:
    err(f"the proxy should be on one network with a fixed subnet, found {proxy_nets}")
for net, subnet in proxy_nets.items():
    ipaddress.ip_network(subnet)
    members = {m for m, ms in services.items() if net in ms.get("networks", [])}
    strangers = members - set(vigil) - {"proxy"}
    if strangers:
        err(f"network {net} (trusted) also holds {sorted(strangers)}, which could forge X-Forwarded-For")
host_ports = {str(p).split(":")[-2] for p in proxy.get("ports", []) if ":" in str(p)}
for n, s in vigil.items():
    env = s.get("environment", {})
    if s.get("ports"):
        err(f"{n}: a vigil node publishes a port; traffic must come through the proxy")
    if env.get("VIGIL_TRUSTED_PROXIES") not in proxy_nets.values():
        err(f"{n}: VIGIL_TRUSTED_PROXIES={env.get('VIGIL_TRUSTED_PROXIES')} is not the proxy network {list(proxy_nets.values())}")
    issuer_port = env.get("VIGIL_ISSUER", "").rsplit(":", 1)[-1]
    if issuer_port not in host_ports:
        err(f"{n}: VIGIL_ISSUER {env.get('VIGIL_ISSUER')} is not on the proxy's published port {sorted(host_ports)}")
    given = {x if isinstance(x, str) else x["source"] for x in s.get("secrets", [])}
    for k, v in env.items():
        if k.endswith("_FILE") and str(v).startswith("/run/secrets/"):
            if str(v).removeprefix("/run/secrets/") not in given:
                err(f"{n}: {k}={v} but the service does not receive that secret")

prom = (root / "deploy/prometheus.yml").read_text()
targets = set(re.findall(r'"([a-z0-9-]+):8080"', prom))
if targets != set(vigil):
    err(f"Prometheus scrapes {sorted(targets)}, the vigil nodes are {sorted(vigil)}")
caddy = (root / "deploy/Caddyfile").read_text()
m = re.search(r"\{\$VIGIL_UPSTREAMS:([^}]*)\}", caddy)
upstreams = {u.split(":")[0] for u in m.group(1).split()} if m else set()
if upstreams != set(vigil):
    err(f"the Caddyfile proxies to {sorted(upstreams)}, the vigil nodes are {sorted(vigil)}")
json.loads((root / "deploy/grafana/dashboards/vigil.json").read_text())

if errors:
    print("docker-compose.yml:", *errors, sep="\n  ", file=sys.stderr)
    sys.exit(1)
print(f"compose references hold ({len(services)} services, {len(vigil)} vigil nodes)")
