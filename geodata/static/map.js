/* The site map (/map): Leaflet over our own data only (see geodata/map_data.py).
 *
 * Base layer: the DRC provinces from our server (works with no network); optional online tiles
 * (data-tile-url, ASMFIELD_TILE_URL) and offline tiles (data-mbtiles-url, ASMFIELD_MBTILES).
 * Sites: points on a canvas below zoom 12, polygons of the view from it; coloured by stage.
 * Filters: the GET form; changes update the URL (history.replaceState), the layers and the legend
 * (the counts come from /api/v1/sites/stats with the same filters).
 */
(function () {
  "use strict";
  const el = document.getElementById("map");
  if (!el || !window.L) return;
  const t = el.dataset;
  const form = document.getElementById("map-filters");
  const status = document.getElementById("map-status");
  const css = getComputedStyle(document.documentElement);
  const stageLabels = (t.stageLabels || "").split("|");
  const POLYGON_ZOOM = 12;
  const DRC = [[-13.5, 12.2], [5.4, 31.3]];

  const colour = (stage) => css.getPropertyValue("--stage-" + stage).trim() || "#7f7f7f";
  const say = (text) => { if (status) status.textContent = text || ""; };

  function filterParams() {
    const params = new URLSearchParams();
    if (form) new FormData(form).forEach((value, key) => { if (value) params.set(key, value); });
    return params;
  }

  async function getJSON(url) {
    const response = await fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}});
    if (!response.ok) throw new Error(response.status + " " + url);
    return response.json();
  }

  function node(tag, text, attrs) {
    const e = document.createElement(tag);
    if (text) e.textContent = text;
    Object.entries(attrs || {}).forEach(([k, v]) => e.setAttribute(k, v));
    return e;
  }

  function sitePopup(site) {
    const box = node("div", null, {class: "map-popup"});
    box.appendChild(node("strong", site.name));
    box.appendChild(node("div", site.code));
    const stage = node("div", null);
    stage.appendChild(node("span", " ", {class: "swatch s" + site.stage, "aria-hidden": "true"}));
    stage.appendChild(document.createTextNode(t.tStage + " " + site.stage + " · " + (stageLabels[site.stage] || "")));
    box.appendChild(stage);
    if (site.flag) box.appendChild(node("div", "⚑ " + t.tFlag, {class: "flag"}));
    box.appendChild(node("a", t.tOpen, {href: "/sites/" + encodeURIComponent(site.code), class: "site-link"}));
    return box;
  }

  // -- the map and its base layers ------------------------------------------------------------
  let rasterOn = false;  // a raster base map is shown: provinces are outlines only
  const map = L.map(el, {minZoom: 3, maxZoom: 18, zoomSnap: 0.5}).fitBounds(DRC);
  el.asmfieldMap = map;  // for the browser tests (and anyone at the console)
  const canvas = L.canvas({padding: 0.3});
  const provinces = L.geoJSON(null, {
    interactive: false,
    style: () => ({color: "#8a7a63", weight: 1, fillColor: "#f3eee4", fillOpacity: rasterOn ? 0 : 1}),
  }).addTo(map);
  map.attributionControl.addAttribution("© OpenStreetMap contributors; geoBoundaries, ODbL");
  const bases = {provinces: null};
  if (t.tileUrl) bases.online = L.tileLayer(t.tileUrl, {maxZoom: 18, attribution: "© OpenStreetMap contributors"});
  if (t.mbtilesUrl) {
    // only the zooms and the area the file holds (a tile outside it is a 404); deeper zooms enlarge its last level
    const options = {maxZoom: 18, minZoom: Number(t.mbtilesMin) || 0, maxNativeZoom: Number(t.mbtilesMax) || 18};
    const b = (t.mbtilesBounds || "").split(",").map(Number);
    if (b.length === 4 && b.every(Number.isFinite)) options.bounds = [[b[1], b[0]], [b[3], b[2]]];
    bases.offline = L.tileLayer(t.mbtilesUrl, options);
  }

  function setBase(name) {
    Object.entries(bases).forEach(([key, layer]) => { if (layer && key !== name) map.removeLayer(layer); });
    if (bases[name]) bases[name].addTo(map).bringToBack();
    rasterOn = Boolean(bases[name]);
    provinces.resetStyle();
  }

  const firstBase = bases.offline ? "offline" : bases.online ? "online" : "provinces";
  getJSON(t.provincesUrl).then((data) => provinces.addData(data)).catch(() => say(t.tFailed));

  // -- sites ----------------------------------------------------------------------------------
  const sites = L.featureGroup().addTo(map);
  let sitesKey = null;
  let sitesRequest = 0;
  let fitted = false;

  function drawPoints(data) {
    const layers = [];
    const radius = map.getZoom() >= 9 ? 6 : 5;
    for (const row of data.sites) {
      const site = {code: row[0], name: row[1], stage: row[2], flag: row[3]};
      const marker = L.circleMarker([row[5], row[4]], {
        renderer: canvas, radius: radius, weight: site.flag ? 2 : 1, color: site.flag ? "#000" : "#fff",
        fillColor: colour(site.stage), fillOpacity: 0.9,
      });
      marker.site = site;
      layers.push(marker);
    }
    return layers;
  }

  function drawPolygons(data) {
    return [L.geoJSON(data, {
      renderer: canvas,
      style: (f) => ({color: f.properties.flag ? "#000" : colour(f.properties.stage), weight: 2,
                      fillColor: colour(f.properties.stage), fillOpacity: 0.45}),
      onEachFeature: (f, layer) => { layer.site = f.properties; },
    })];
  }

  async function loadSites(force) {
    const zoom = Math.floor(map.getZoom());
    const params = filterParams();
    params.set("zoom", String(zoom));
    if (zoom >= POLYGON_ZOOM) {
      const b = map.getBounds();
      params.set("bbox", [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(4)).join(","));
    } else {
      params.set("zoom", String(Math.min(zoom, POLYGON_ZOOM - 1)));
    }
    const key = params.toString() + (zoom >= 9 ? "|near" : "|far");
    if (!force && key === sitesKey) return;
    sitesKey = key;
    const mine = ++sitesRequest;
    say(t.tLoading);
    try {
      const data = await getJSON(t.sitesUrl + "?" + params);
      if (mine !== sitesRequest) return;
      sites.clearLayers();
      (data.mode === "points" ? drawPoints(data) : drawPolygons(data)).forEach((layer) => sites.addLayer(layer));
      el.dataset.siteCount = data.mode === "points" ? data.sites.length : data.features.length;
      if (!fitted && data.mode === "points" && data.sites.length) {
        fitted = true;  // first view: the sites found, not the whole country
        map.fitBounds(L.latLngBounds(data.sites.map((row) => [row[5], row[4]])), {maxZoom: 9, padding: [20, 20], animate: false});
      }
      el.dataset.mode = data.mode;
      say("");
    } catch (err) {
      say(t.tFailed);
    }
  }

  sites.on("click", (e) => {
    const site = e.layer.site || (e.propagatedFrom && e.propagatedFrom.site) || (e.sourceTarget && e.sourceTarget.site);
    if (site) L.popup().setLatLng(e.latlng).setContent(sitePopup(site)).openOn(map);
  });

  // -- visits (clustered) ---------------------------------------------------------------------
  const visits = L.markerClusterGroup ? L.markerClusterGroup({
    showCoverageOnHover: false, maxClusterRadius: 50,
    // one neutral colour: the default green/yellow/orange clusters would read as formalisation stages
    iconCreateFunction: (cluster) => L.divIcon({
      html: "<span>" + cluster.getChildCount() + "</span>", className: "visit-cluster", iconSize: [34, 34],
    }),
  }) : L.layerGroup();

  async function loadVisits() {
    try {
      const data = await getJSON(t.visitsUrl + "?" + filterParams());
      visits.clearLayers();
      visits.addLayers ? visits.addLayers(data.visits.map(visitMarker)) : data.visits.forEach((v) => visits.addLayer(visitMarker(v)));
      el.dataset.visitCount = data.visits.length;
    } catch (err) {
      say(t.tFailed);
    }
  }

  function visitMarker(row) {
    const marker = L.circleMarker([row[1], row[0]], {radius: 5, weight: 1, color: "#fff", fillColor: "#1f4e79", fillOpacity: 1});
    marker.bindPopup(() => {
      const box = node("div", null, {class: "map-popup"});
      box.appendChild(node("strong", t.tVisit.replace("{date}", row[3])));
      box.appendChild(node("div", row[2]));
      box.appendChild(node("a", t.tOpen, {href: "/sites/" + encodeURIComponent(row[2])}));
      box.appendChild(node("br"));
      box.appendChild(node("a", t.tSubmission, {href: "/submissions/" + encodeURIComponent(row[4])}));
      return box;
    });
    return marker;
  }

  // -- legal layers (ZEA, PE, PR, quarries, forbidden and protected zones): context, never sites --
  const LEGAL_STYLE = {
    zea: {color: "#1d5fa8", weight: 2, dashArray: "6 4", fillColor: "#1d5fa8", fillOpacity: 0.08},
    pe: {color: "#6a3d9a", weight: 1.5, fillColor: "#6a3d9a", fillOpacity: 0.06},
    pr: {color: "#555", weight: 1, dashArray: "2 4", fillColor: "#555", fillOpacity: 0.04},
    quarry: {color: "#8a5a00", weight: 1, dashArray: "1 3", fillColor: "#8a5a00", fillOpacity: 0.05},
    zin: {color: "#b00020", weight: 1.5, dashArray: "8 3", fillColor: "#b00020", fillOpacity: 0.07},
  };
  const legal = {};
  const legalZoom = {};

  async function loadLegal(kind) {
    const zoom = Math.min(Math.floor(map.getZoom()), 12);
    let query = "?zoom=" + zoom;
    if (zoom >= 9) {  // close in: only the polygons of the view (padded), however many the country holds
      const b = map.getBounds().pad(0.5);
      query += "&bbox=" + [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(2)).join(",");
    }
    if (legalZoom[kind] === query) return;
    legalZoom[kind] = query;
    try {
      const data = await getJSON(t.legalUrl + kind + query);
      legal[kind].clearLayers();
      legal[kind].addData(data);
      el.dataset["legal" + kind] = data.features.length;
    } catch (err) {
      say(t.tFailed);
    }
  }

  Object.keys(LEGAL_STYLE).forEach((kind) => {
    legal[kind] = L.geoJSON(null, {
      renderer: canvas,
      style: LEGAL_STYLE[kind],
      onEachFeature: (f, layer) => layer.bindPopup(() => {
        const p = f.properties;
        const box = node("div", null, {class: "map-popup"});
        box.appendChild(node("strong", (p.title_type ? p.title_type + " " : "") + p.code));
        if (p.name && p.name !== p.code) box.appendChild(node("div", p.name));
        if (p.holder) box.appendChild(node("div", p.holder));
        box.appendChild(node("div", p.layer, {class: "muted"}));
        return box;
      }),
    });
  });

  // -- layer switches (checkboxes and radios under the map) ------------------------------------
  const overlays = {sites: sites, visits: visits, ...legal};
  const switches = document.getElementById("map-layers");
  if (switches) {
    switches.hidden = false;
    switches.querySelectorAll("[data-base]").forEach((input) => {
      if (input.dataset.base !== "provinces" && !bases[input.dataset.base]) input.closest("label").remove();
    });
    const chosen = switches.querySelector("[data-base='" + firstBase + "']");
    if (chosen) chosen.checked = true;
    const choices = switches.querySelector(".bases");
    if (choices && choices.querySelectorAll("input").length < 2) choices.remove();  // nothing to choose
    switches.addEventListener("change", (e) => {
      const input = e.target;
      if (input.dataset.base) { setBase(input.dataset.base); return; }
      const layer = overlays[input.dataset.layer];
      if (!layer) return;
      if (input.checked) {
        layer.addTo(map);
        if (legal[input.dataset.layer]) loadLegal(input.dataset.layer);
        if (input.dataset.layer === "visits") loadVisits();
      } else {
        map.removeLayer(layer);
      }
      el.dataset["on" + input.dataset.layer] = input.checked ? "1" : "0";
    });
    switches.querySelectorAll("[data-layer]").forEach((input) => {
      if (input.checked && overlays[input.dataset.layer] !== sites) input.dispatchEvent(new Event("change", {bubbles: true}));
    });
  }

  // -- filters: URL, layers and legend -------------------------------------------------------------
  async function refreshLegend() {
    const params = filterParams();
    params.set("months", "1");
    try {
      const stats = await getJSON(t.statsUrl + "?" + params);
      document.querySelectorAll("#map-legend [data-stage]").forEach((li) => {
        li.querySelector(".count").textContent = stats.by_stage[li.dataset.stage] || 0;
      });
      const total = document.getElementById("map-total");
      if (total) total.textContent = stats.sites;
    } catch (err) {
      say(t.tFailed);
    }
  }

  function applyFilters() {
    const query = filterParams().toString();
    history.replaceState(null, "", "/map" + (query ? "?" + query : ""));
    loadSites(true);
    refreshLegend();
    if (map.hasLayer(visits)) loadVisits();
  }

  if (form) {
    form.addEventListener("change", applyFilters);
    form.addEventListener("submit", (e) => { e.preventDefault(); applyFilters(); });
  }

  setBase(firstBase);

  map.on("moveend", () => {
    loadSites(false);
    Object.keys(legal).forEach((kind) => { if (map.hasLayer(legal[kind])) loadLegal(kind); });
  });
  loadSites(true);
})();
