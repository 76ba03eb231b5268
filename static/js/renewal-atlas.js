/* Renewal Atlas: the map's shared code (layer factory, legend, demo mark, scale, basemap pane).
   Loaded by every map the app draws (gis/maps/mapview.py); RenewalAtlas.init(map, options) starts it. */
window.RenewalAtlas = window.RenewalAtlas || (function () {
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function tipFn(fields, sep, blockedText) {
    return function (layer) {
      var p = (layer && layer.feature && layer.feature.properties) || {};
      var box = el('div', 'ratlas-tip');
      for (var i = 0; i < fields.length; i++) {
        var v = p[fields[i][1]];
        if (v === null || v === undefined || v === '') { continue; }
        var row = el('div', 'ratlas-tip-row');
        row.appendChild(el('span', 'ratlas-tip-key', fields[i][0] + sep));
        row.appendChild(document.createTextNode(String(v)));
        box.appendChild(row);
      }
      if (p.blocked && blockedText) { box.appendChild(el('div', 'ratlas-tip-blocked', blockedText)); }
      return box;
    };
  }
  function styleFn(o) {
    if (o.mode === 'phase') {
      return function (f) {
        var p = f.properties || {}, b = p.blocked;
        return {fill: true, fillColor: o.colors[p.phase] || o.colors.not_started || '#999999',
                fillOpacity: o.fillOpacity, opacity: 1, interactive: o.interactive,
                color: b ? o.blockedColor : o.color, weight: b ? o.blockedWeight : o.weight};
      };
    }
    return function () { return o.style; };
  }
  function orderOf(map) { return map._ratlasOrder || (map._ratlasOrder = []); }
  function init(map, o) {
    map.getContainer().style.background = o.background;
    if (!map.getPane('ratlasBasemap')) {
      map.createPane('ratlasBasemap');
      map.getPane('ratlasBasemap').style.zIndex = 250;  /* above tiles, below the vectors */
    }
    /* a group switched back on is drawn last: restore the declared order */
    map.on('overlayadd', function () {
      var order = orderOf(map);
      for (var i = 0; i < order.length; i++) {
        if (map.hasLayer(order[i]) && order[i].bringToFront) { order[i].bringToFront(); }
      }
    });
    L.control.scale({metric: true, imperial: false, position: 'bottomleft', maxWidth: 150}).addTo(map);
    if (o.legend) {
      var legend = L.control({position: 'bottomleft'});
      legend.onAdd = function () {
        var d = el('div', 'ratlas-legend');
        L.DomEvent.disableClickPropagation(d);
        L.DomEvent.disableScrollPropagation(d);
        d.appendChild(el('div', 'ratlas-legend-title', o.legend.title));
        for (var i = 0; i < o.legend.items.length; i++) {
          var it = o.legend.items[i], row = el('div', 'ratlas-legend-row');
          var sw = el('span', 'ratlas-swatch');
          sw.style.background = it.fill || 'transparent';
          sw.style.borderColor = it.stroke;
          if (it.kind === 'outline') { sw.style.borderWidth = '2px'; }
          row.appendChild(sw);
          row.appendChild(el('span', 'ratlas-legend-label', it.label));
          d.appendChild(row);
        }
        return d;
      };
      legend.addTo(map);
    }
    if (o.demoMark) {
      var mark = el('div', 'ratlas-demo', o.demoMark);
      map.getContainer().appendChild(mark);
    }
  }
  function addLayer(map, parent, data, o) {
    var style = styleFn(o);
    var lyr = L.geoJSON(data, {
      style: style,
      interactive: o.interactive,
      pointToLayer: function (f, ll) { return L.circleMarker(ll, style(f)); }
    });
    if (o.interactive && o.tooltip && o.tooltip.length) {
      lyr.bindTooltip(tipFn(o.tooltip, o.sep, o.blockedText),
                      {sticky: true, direction: 'top', className: 'ratlas-tooltip'});
    }
    if (o.interactive && o.hoverWeight) {
      lyr.on('mouseover', function (e) { if (e.layer.setStyle) { e.layer.setStyle({weight: o.hoverWeight}); } });
      lyr.on('mouseout', function (e) { lyr.resetStyle(e.layer); });
    }
    lyr.addTo(parent);
    orderOf(map).push(lyr);
    if (o.labelField) { addLabels(map, parent, lyr, o); }
    return lyr;
  }
  /* permanent name labels (catalogue label_field), shown from a zoom level on, switched with the group */
  function addLabels(map, parent, lyr, o) {
    var labels = L.layerGroup();
    lyr.eachLayer(function (l) {
      var text = l.feature && l.feature.properties[o.labelField];
      if (!text || !l.getBounds) { return; }
      L.tooltip({permanent: true, direction: 'center', className: 'ratlas-label', interactive: false})
        .setLatLng(l.getBounds().getCenter()).setContent(el('span', '', text)).addTo(labels);
    });
    function update() {
      var want = parent._map && map.getZoom() >= o.labelMinZoom;
      if (want && !parent.hasLayer(labels)) { parent.addLayer(labels); }
      if (!want && parent.hasLayer(labels)) { parent.removeLayer(labels); }
    }
    map.on('zoomend', update);
    parent.on('add', update);
    map.whenReady(update);
  }
  function addImage(map, parent, o) {
    var img = L.imageOverlay(o.url, o.bounds, {pane: 'ratlasBasemap', opacity: o.opacity,
                                               attribution: o.attribution, interactive: false});
    img.addTo(parent);
    return img;
  }
  return {init: init, addLayer: addLayer, addImage: addImage};
})();
