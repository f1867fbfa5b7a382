// The small map of a site page: the site's polygon and its visits' points, no tiles (works offline).
// Data comes from the map element's data-geometry (GeoJSON) and data-visits ([[lon, lat, date], ...]).
(function () {
  "use strict";
  function init() {
    var el = document.getElementById("site-map");
    if (!el || typeof L === "undefined") { return; }
    var geometry, visits;
    try {
      geometry = JSON.parse(el.dataset.geometry || "null");
      visits = JSON.parse(el.dataset.visits || "[]");
    } catch (e) {
      return;
    }
    var map = L.map(el, { attributionControl: false, scrollWheelZoom: false });
    var layers = L.featureGroup().addTo(map);
    if (geometry) {
      L.geoJSON(geometry, { style: { color: "#7a3e00", weight: 2, fillOpacity: 0.15 } }).addTo(layers);
    }
    var label = el.dataset.labelVisit || "Visit";
    visits.forEach(function (v) {
      L.circleMarker([v[1], v[0]], { radius: 6, color: "#fff", weight: 2, fillColor: "#1f4e8c", fillOpacity: 1 })
        .bindTooltip(label + " " + v[2]).addTo(layers);
    });
    var bounds = layers.getBounds();
    if (bounds.isValid()) {
      map.fitBounds(bounds.pad(0.3), { maxZoom: 17 });
    } else {
      map.setView([-10.7, 25.5], 8);
    }
    el.classList.add("ready");
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
