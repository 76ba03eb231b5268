/* Renewal Atlas: tile basemaps and the notice when they cannot be reached (gis/maps/basemap_layers.py);
   RenewalBasemap.add(map, options). */
var RenewalBasemap = (function () {
 function add(map, o) {
  var box = null, errors = 0, loads = 0, timer = null;
  function notice() {
    if (box) { return; }
    box = document.createElement('div');
    box.className = 'ratlas-basemap-notice';
    box.setAttribute('role', 'status');
    box.textContent = o.notice;
    var x = document.createElement('span');
    x.className = 'ratlas-basemap-notice-x';
    x.textContent = '\u00d7';
    x.onclick = function () { box.style.display = 'none'; };
    box.appendChild(x);
    L.DomEvent.disableClickPropagation(box);
    map.getContainer().appendChild(box);
    window.ratlasBasemapNotice = o.notice;
  }
  window.ratlasTileStats = function () { return {errors: errors, loads: loads, notice: !!box}; };
  if (o.noticeNow) { notice(); }
  (o.tiles || []).forEach(function (s, i) {
    var layer = L.tileLayer(s.url, {subdomains: s.subdomains, attribution: s.attribution,
                                    maxNativeZoom: s.maxNativeZoom, maxZoom: 20, zIndex: 1 + i});
    layer.on('tileload', function () { loads++; });
    layer.on('tileerror', function () {
      errors++;
      if (errors >= o.maxErrors && errors > loads) { notice(); }
    });
    layer.on('loading', function () {
      if (!timer) { timer = setTimeout(function () { if (loads === 0) { notice(); } }, o.timeoutMs); }
    });
    layer.addTo(map);
  });
 }
 return {add: add};
})();
