// The small map of one submission's geopoints (sync/templates/sync/submission.html).
// No tiles: a plain background with the points is enough to see where they are and how they spread.
(function () {
  "use strict";
  const box = document.getElementById("submission-map");
  if (!box || typeof L === "undefined") return;
  let points = [];
  try { points = JSON.parse(box.dataset.points || "[]"); } catch (e) { return; }
  if (!points.length) return;
  const map = L.map(box, { attributionControl: false, scrollWheelZoom: false });
  const markers = points.map((p) => L.circleMarker([p.lat, p.lon], {
    radius: 8, weight: 2, color: "#5c3b00", fillColor: "#c8811a", fillOpacity: 0.85,
  }).bindTooltip(p.label || "").addTo(map));
  if (markers.length === 1) {
    map.setView(markers[0].getLatLng(), 15);
  } else {
    map.fitBounds(L.featureGroup(markers).getBounds(), { padding: [24, 24], maxZoom: 17 });
  }
  L.control.scale({ imperial: false }).addTo(map);
  // The provinces as a background that needs no network beyond our server (the map's base layer).
  if (box.dataset.provinces) {
    fetch(box.dataset.provinces, { credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : null))
      .then((geojson) => {
        if (!geojson) return;
        L.geoJSON(geojson, {
          interactive: false,
          style: { color: "#8a7f70", weight: 1, fillColor: "#f4efe6", fillOpacity: 1 },
        }).addTo(map).bringToBack();
      })
      .catch(() => {});
  }
})();
