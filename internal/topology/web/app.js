// The svcnet topology page: draws the snapshot the server sends on
// /ui/events (Server-Sent Events) and redraws on each new snapshot.
"use strict";
let graph = null;
let selected = "";

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
}

function portText(p) {
  let s = p.port + "/" + p.protocol;
  if (p.targetPort) s += "→" + p.targetPort;
  if (p.nodePort) s += " node:" + p.nodePort;
  return s;
}

function render() {
  if (!graph) return;
  const filter = document.getElementById("nsfilter").value;
  const sel = document.getElementById("nsfilter");
  const have = new Set([...sel.options].map(o => o.value));
  for (const ns of graph.namespaces) if (!have.has(ns)) sel.append(el("option", {value: ns}, ns));
  const show = ns => !filter || ns === filter;

  const svcCol = document.getElementById("services");
  svcCol.replaceChildren();
  const byNs = new Map();
  for (const s of graph.services) {
    if (!show(s.namespace)) continue;
    if (!byNs.has(s.namespace)) byNs.set(s.namespace, []);
    byNs.get(s.namespace).push(s);
  }
  for (const [ns, svcs] of byNs) {
    const box = el("div", {class: "ns", "data-namespace": ns}, el("h3", {}, "namespace " + ns));
    for (const s of svcs) {
      const key = s.namespace + "/" + s.name;
      const vip = (s.clusterIPs || []).join(",") || s.externalName || "";
      const b = el("div", {class: "svc" + (key === selected ? " sel" : ""), "data-service": key},
        el("div", {class: "name"}, s.name),
        el("div", {class: "meta"}, s.type + " " + vip),
        el("div", {class: "meta"}, (s.ports || []).map(portText).join(" ")));
      b.onclick = () => { selected = key; render(); };
      box.append(b);
    }
    svcCol.append(box);
  }

  const nodeRow = document.getElementById("nodes");
  nodeRow.replaceChildren();
  const nodeBoxes = new Map();
  const nodeBox = (name, ready) => {
    const b = el("div", {class: "node" + (ready ? "" : " notready"), "data-node": name}, el("h3", {}, name ? "node " + name : "not scheduled"));
    nodeBoxes.set(name, b);
    nodeRow.append(b);
    return b;
  };
  for (const n of graph.nodes) nodeBox(n.name, n.ready);
  const podEls = new Map();
  for (const p of graph.pods) {
    if (!show(p.namespace)) continue;
    const box = nodeBoxes.get(p.node || "") || nodeBox(p.node || "", !!p.node);
    let group = box.querySelector(`[data-ns="${CSS.escape(p.namespace)}"]`);
    if (!group) { group = el("div", {"data-ns": p.namespace}, el("h3", {}, p.namespace)); box.append(group); }
    const key = p.namespace + "/" + p.name;
    const e = el("div", {class: "pod" + (p.ready ? " ready" : ""), "data-pod": key, "data-ready": String(p.ready)},
      p.name, " ", el("span", {class: "ip"}, p.ip || ""));
    group.append(e);
    podEls.set(key, e);
  }
  drawLines(podEls);
  showDetails();
}

function drawLines(podEls) {
  const svg = document.getElementById("lines");
  const main = document.getElementById("main").getBoundingClientRect();
  svg.setAttribute("width", main.width);
  svg.setAttribute("height", main.height);
  svg.replaceChildren();
  for (const box of document.querySelectorAll(".svc")) {
    const s = graph.services.find(x => x.namespace + "/" + x.name === box.dataset.service);
    const a = box.getBoundingClientRect();
    for (const ep of s.endpoints || []) {
      const p = podEls.get(ep.pod);
      if (!p) continue;
      const b = p.getBoundingClientRect();
      const line = document.createElementNS("http://www.w3.org/2000/svg", "line");
      line.setAttribute("x1", a.right - main.left); line.setAttribute("y1", a.top + a.height / 2 - main.top);
      line.setAttribute("x2", b.left - main.left); line.setAttribute("y2", b.top + b.height / 2 - main.top);
      line.setAttribute("stroke", ep.ready ? "#2a2" : "#aaa");
      line.setAttribute("stroke-width", box.dataset.service === selected ? "3" : "1.5");
      line.setAttribute("data-endpoint", ep.address);
      svg.append(line);
    }
  }
}

function showDetails() {
  const d = document.getElementById("details");
  const s = graph.services.find(x => x.namespace + "/" + x.name === selected);
  if (!s) { d.style.display = "none"; return; }
  d.style.display = "block";
  const lines = [`Service ${s.namespace}/${s.name} (${s.type})`];
  if (s.clusterIPs) lines.push(`VIP ${s.clusterIPs.join(", ")}`);
  if (s.externalName) lines.push(`ExternalName ${s.externalName} (a DNS CNAME, no VIP and no rules)`);
  if (s.loadBalancerIPs) lines.push(`LoadBalancer ${s.loadBalancerIPs.join(", ")}`);
  for (const p of s.ports || []) lines.push(`  port ${portText(p)}${p.name ? " (" + p.name + ")" : ""}`);
  if (s.sessionAffinity && s.sessionAffinity !== "None") lines.push(`session affinity ${s.sessionAffinity}`);
  if (s.externalTrafficPolicy) lines.push(`externalTrafficPolicy ${s.externalTrafficPolicy}`);
  if (s.internalTrafficPolicy) lines.push(`internalTrafficPolicy ${s.internalTrafficPolicy}`);
  const ready = (s.endpoints || []).filter(e => e.ready);
  lines.push("", `Endpoints (${ready.length} ready of ${(s.endpoints || []).length}; each ready one gets 1/${ready.length || "-"} of new connections):`);
  for (const e of s.endpoints || []) {
    lines.push(`  ${e.address}  ${e.ready ? "ready" : e.serving ? "serving, not ready" : "not ready"}${e.terminating ? " terminating" : ""}  pod ${e.pod || "-"}  node ${e.node || "-"}  slice ${e.slice}`);
  }
  if (!(s.endpoints || []).length) lines.push(s.type === "ExternalName" ? "  (none: ExternalName)" : "  (none: connections to the VIP are rejected)");
  lines.push("", `Full path on a node: svcnet explain service ${s.namespace}/${s.name}`);
  d.replaceChildren(el("button", {}, "close"), el("pre", {}, lines.join("\n")),
    el("h4", {}, "JSON"), el("pre", {}, JSON.stringify(s, null, 2)));
  d.firstChild.onclick = () => { selected = ""; render(); };
}

function set(g) { graph = g; render(); }

try { set(JSON.parse(document.getElementById("initial").textContent)); } catch (e) { /* no initial snapshot */ }
document.getElementById("nsfilter").onchange = render;
window.addEventListener("resize", render);
const status = document.getElementById("status");
const events = new EventSource("events");
events.addEventListener("snapshot", ev => { set(JSON.parse(ev.data)); status.textContent = "live, updated " + new Date().toLocaleTimeString(); });
events.addEventListener("error", () => { status.textContent = "disconnected, retrying…"; });
