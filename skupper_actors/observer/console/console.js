// The observer's console: plain JavaScript on the observer's own REST API, no build step.
// Pages (by the URL's hash): #/ topology, #/services, #/services/<id>, #/connections.
"use strict";

const API = "api/v2alpha1/";
const REFRESH_MS = 2000;
const SVG = "http://www.w3.org/2000/svg";
const traffic = {}; // service identity -> [[time ms, bytes both ways]], for the sparkline
const filters = { routingKey: "", site: "", state: "all" };
let refreshing = null;

async function get(path) {
  const response = await fetch(API + path, { cache: "no-store" });
  if (!response.ok) {
    let message = `HTTP ${response.status}`;
    try { message = (await response.json()).message || message; } catch (e) { /* not JSON */ }
    throw new Error(`${path}: ${message}`);
  }
  return (await response.json()).results;
}

function el(tag, attrs, ...children) {
  const node = tag.startsWith("svg:")
    ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n || 0, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

function when(us) {
  return us ? new Date(us / 1000).toLocaleTimeString() : "";
}

function table(headers, rows) {
  return el("table", {},
    el("thead", {}, el("tr", {}, headers.map(([label, cls]) => el("th", { class: cls }, label)))),
    el("tbody", {}, rows));
}

// -- topology ---------------------------------------------------------------------------------
function labelAt(x1, y1, x2, y2) {
  // beside the line's middle, off the line by 14 px
  const dx = x2 - x1, dy = y2 - y1, length = Math.hypot(dx, dy) || 1;
  return { x: (x1 + x2) / 2 - (14 * dy) / length, y: (y1 + y2) / 2 + (14 * dx) / length + 4 };
}

async function topology(page) {
  const [sites, routers, links] = await Promise.all(
    [get("sites"), get("routers"), get("routerlinks")]);
  const siteOf = {}, nameOf = {};
  routers.forEach((r) => { siteOf[r.identity] = r.siteId; });
  sites.forEach((s) => { nameOf[s.identity] = s.name; });
  const width = 800, height = 420, radius = Math.min(150, 60 + 25 * sites.length);
  const at = {};
  sites.slice().sort((a, b) => (a.name < b.name ? -1 : 1)).forEach((site, i, all) => {
    const angle = (2 * Math.PI * i) / all.length - Math.PI / 2;
    at[site.identity] = all.length === 1 ? [width / 2, height / 2]
      : [width / 2 + radius * 1.6 * Math.cos(angle), height / 2 + radius * Math.sin(angle)];
  });
  const pairs = {};
  for (const link of links) {
    const from = siteOf[link.routerId], to = siteOf[link.destinationRouterId];
    if (!at[from] || !at[to]) continue;
    const key = [from, to].sort().join("|");
    if (!pairs[key] || link.status === "up") pairs[key] = { from, to, link };
  }
  const svg = el("svg:svg", { class: "topology", viewBox: `0 0 ${width} ${height}` });
  for (const { from, to, link } of Object.values(pairs)) {
    const [x1, y1] = at[from], [x2, y2] = at[to];
    svg.append(el("svg:g", {
      class: `link ${link.status === "up" ? "up" : "down"}`, "data-from": nameOf[from],
      "data-to": nameOf[to], "data-status": link.status, "data-cost": link.cost },
    el("svg:line", { x1, y1, x2, y2 }),
    el("svg:text", labelAt(x1, y1, x2, y2), `cost ${link.cost ?? "?"}`)));
  }
  for (const site of sites) {
    const [x, y] = at[site.identity];
    svg.append(el("svg:g", { class: "site", "data-site": site.name },
      el("svg:circle", { cx: x, cy: y, r: 34 }),
      el("svg:text", { x, y: y + 5 }, site.name)));
  }
  const rows = Object.values(pairs).map(({ from, to, link }) => el("tr", {},
    el("td", {}, nameOf[from]), el("td", {}, nameOf[to]),
    el("td", {}, el("span", { class: `badge ${link.status === "up" ? "up" : "down"}` },
      link.status)),
    el("td", { class: "num" }, link.cost ?? "")));
  page.replaceChildren(
    el("h2", {}, `${sites.length} site${sites.length === 1 ? "" : "s"}, `
      + `${Object.keys(pairs).length} link${Object.keys(pairs).length === 1 ? "" : "s"}`),
    svg,
    el("h3", {}, "Links"),
    table([["from"], ["to"], ["status"], ["cost", "num"]], rows));
}

// -- services ---------------------------------------------------------------------------------
function countBy(connections, key) {
  const counts = {};
  for (const c of connections) counts[c[key]] = (counts[c[key]] || 0) + 1;
  return counts;
}

async function services(page) {
  const [list, connections] = await Promise.all([get("services"), get("connections?state=all")]);
  const counts = countBy(connections, "routingKey");
  const rows = list.sort((a, b) => (a.name < b.name ? -1 : 1)).map((s) => el("tr", {
    "data-service": s.name, "data-connections": counts[s.name] || 0 },
  el("td", {}, el("a", { href: `#/services/${encodeURIComponent(s.identity)}` }, s.name)),
  el("td", {}, s.protocol),
  el("td", { class: "num" }, s.listenerCount), el("td", { class: "num" }, s.connectorCount),
  el("td", { class: "num" }, counts[s.name] || 0)));
  page.replaceChildren(el("h2", {}, "Services"), table(
    [["routing key"], ["protocol"], ["listeners", "num"], ["connectors", "num"],
      ["connections", "num"]], rows));
}

function sparkline(points) {
  const width = 600, height = 90;
  const svg = el("svg:svg", { class: "spark", viewBox: `0 0 ${width} ${height}`,
    preserveAspectRatio: "none" });
  if (points.length < 2) return svg;
  const rates = points.slice(1).map(([t, b], i) => [t, Math.max(0, b - points[i][1])
    / Math.max(0.001, (t - points[i][0]) / 1000)]);
  const top = Math.max(1, ...rates.map(([, r]) => r));
  const t0 = rates[0][0], span = Math.max(1, rates[rates.length - 1][0] - t0);
  svg.append(el("svg:polyline", { points: rates.map(([t, r]) =>
    `${((t - t0) / span) * width},${height - 4 - (r / top) * (height - 8)}`).join(" ") }));
  return svg;
}

async function service(page, identity) {
  const item = await get(`services/${encodeURIComponent(identity)}`);
  const key = encodeURIComponent(item.name);
  const [listeners, connectors, connections] = await Promise.all([
    get(`listeners?routingKey=${key}`), get(`connectors?routingKey=${key}`),
    get(`connections?routingKey=${key}&state=all`)]);
  const total = connections.reduce((sum, c) => sum + c.octetCount + c.octetReverseCount, 0);
  const points = (traffic[identity] = (traffic[identity] || []).concat([[Date.now(), total]]))
    .slice(-60);
  traffic[identity] = points;
  const active = connections.filter((c) => !c.endTime).length;
  page.replaceChildren(
    el("h2", {}, `Service ${item.name}`),
    el("div", { class: "panel" },
      el("span", { id: "connection-count", class: "big", "data-count": connections.length },
        connections.length),
      el("span", { class: "muted" }, ` connections (${active} open), ${bytes(total)} carried`)),
    el("h3", {}, "Traffic (bytes/s, both ways)"), sparkline(points),
    el("h3", {}, "Listeners"),
    table([["site"], ["name"], ["connections", "num"]], listeners.map((l) => el("tr",
      { "data-listener": l.name }, el("td", {}, l.siteName), el("td", {}, l.name),
      el("td", { class: "num" }, l.flowCount)))),
    el("h3", {}, "Connectors"),
    table([["site"], ["name"], ["target"], ["connections", "num"]], connectors.map((c) =>
      el("tr", { "data-connector": c.name }, el("td", {}, c.siteName), el("td", {}, c.name),
        el("td", {}, `${c.destHost}:${c.destPort}`), el("td", { class: "num" }, c.flowCount)))),
    el("h3", {}, "Latest connections"),
    connectionTable(connections.slice(-20).reverse()));
}

// -- connections ------------------------------------------------------------------------------
function connectionTable(connections) {
  return table([["started"], ["routing key"], ["from"], ["to"], ["via"], ["sent", "num"],
    ["received", "num"], ["latency µs", "num"], ["error"]], connections.map((c) => {
    const error = c.listenerError || c.connectorError;
    return el("tr", { class: error ? "error" : null, "data-connection": c.identity },
      el("td", {}, when(c.startTime)), el("td", {}, c.routingKey),
      el("td", {}, `${c.sourceSiteName || "?"} ${c.sourceHost || ""}`),
      el("td", {}, `${c.destSiteName || "?"} ${c.destHost || ""}`),
      el("td", {}, (c.traceSites || []).join(" → ")),
      el("td", { class: "num" }, bytes(c.octetCount)),
      el("td", { class: "num" }, bytes(c.octetReverseCount)),
      el("td", { class: "num" }, c.latency), el("td", {}, error || ""));
  }));
}

async function connections(page) {
  if (!page.querySelector(".filters")) {
    const input = (name, label) => el("label", {}, label, el("input", {
      name, value: filters[name], placeholder: "any" }));
    const form = el("div", { class: "filters" }, input("routingKey", "routing key"),
      input("site", "site"), el("label", {}, "state", el("select", { name: "state" },
        ["all", "active", "terminated"].map((s) => el("option", { value: s }, s)))));
    form.querySelector("select").value = filters.state;
    form.addEventListener("input", (event) => {
      filters[event.target.name] = event.target.value.trim();
      refresh();
    });
    page.replaceChildren(el("h2", {}, "Connections"), form, el("div", { id: "list" }));
  }
  let path = `connections?state=${filters.state}&sortBy=startTime.desc`;
  if (filters.routingKey) path += `&routingKey=${encodeURIComponent(filters.routingKey)}`;
  let list = await get(path);
  if (filters.site) {
    list = list.filter((c) => c.sourceSiteName === filters.site
      || c.destSiteName === filters.site);
  }
  page.querySelector("#list").replaceChildren(
    el("p", { class: "muted", id: "connection-total", "data-count": list.length },
      `${list.length} connection${list.length === 1 ? "" : "s"}`),
    connectionTable(list.slice(0, 200)));
}

// -- navigation and refresh -------------------------------------------------------------------
async function refresh() {
  const page = document.getElementById("page");
  const status = document.getElementById("status");
  const [, name, id] = (location.hash.replace(/^#/, "") || "/").split("/");
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle(
    "current", a.dataset.page === (name || "topology")));
  try {
    if (name === "services" && id) await service(page, decodeURIComponent(id));
    else if (name === "services") await services(page);
    else if (name === "connections") await connections(page);
    else await topology(page);
    status.textContent = `updated ${new Date().toLocaleTimeString()}`;
    status.className = "status";
  } catch (error) {
    status.textContent = String(error.message || error);
    status.className = "status error";
  }
}

function schedule() {
  clearInterval(refreshing);
  refresh();
  refreshing = setInterval(refresh, REFRESH_MS);
}

window.addEventListener("hashchange", () => {
  document.getElementById("page").replaceChildren();
  schedule();
});
schedule();
