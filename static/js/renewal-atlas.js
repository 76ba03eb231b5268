/* Renewal Atlas: the map's shared code (layer factory, legend, demo mark, scale, basemap pane, and the
   layer groups and view a rerun of the page must keep: track/restore, gis/maps/mapstate.py).
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
        return {fill: true, fillColor: o.colors[p[o.colorField || 'phase']] || o.colors.not_started || '#999999',
                fillOpacity: o.fillOpacity, opacity: 1, interactive: o.interactive,
                color: b ? o.blockedColor : o.color, weight: b ? o.blockedWeight : o.weight};
      };
    }
    /* a key project: its footprint outlined in its stage's colour, its circle (a point) sized by investment */
    if (o.mode === 'project') {
      return function (f) {
        var p = f.properties || {}, c = p.color || '#999999';
        if (f.geometry && f.geometry.type === 'Point') {
          return {radius: p.radius || 6, fill: true, fillColor: c, fillOpacity: 0.85, color: o.edge || '#222222',
                  weight: 1.4, opacity: 1, interactive: o.interactive};
        }
        return {fill: false, color: c, weight: 2.6, opacity: 0.95, dashArray: '6 4', interactive: false};
      };
    }
    return function () { return o.style; };
  }
  /* a legend folds to its title (a click toggles it): folded from the start on a small map (a phone) */
  function small(map) { var z = map.getSize(); return z.x < 560 || z.y < 420; }
  function collapsible(box, title, folded) {
    title.setAttribute('role', 'button');
    title.tabIndex = 0;
    box.appendChild(title);
    function set(f) { box.classList.toggle('ratlas-folded', f); title.setAttribute('aria-expanded', f ? 'false' : 'true'); }
    set(!!folded);
    L.DomEvent.on(title, 'click', function (e) { L.DomEvent.stop(e); set(!box.classList.contains('ratlas-folded')); });
    return box;
  }
  /* a sticky tooltip opens on the side that keeps it inside the map (it is clipped at the map's edge) */
  function placeTip(map, tip, pt) {
    if (!tip || !pt) { return; }
    var box = tip.getElement && tip.getElement(), size = map.getSize();
    var w = box ? box.offsetWidth : 220, h = box ? box.offsetHeight : 60, dir = 'top';
    if (pt.y < h + 18) { dir = 'bottom'; }
    if (pt.x < w / 2 + 8) { dir = 'right'; } else if (pt.x > size.x - w / 2 - 8) { dir = 'left'; }
    if (tip.options.direction !== dir) {
      tip.options.direction = dir;
      if (tip.isOpen && tip.isOpen()) { tip.update(); }
    }
  }
  function orderOf(map) { return map._ratlasOrder || (map._ratlasOrder = []); }
  function init(map, o) {
    map.getContainer().style.background = o.background;
    if (!map.getPane('ratlasBasemap')) {
      map.createPane('ratlasBasemap');
      map.getPane('ratlasBasemap').style.zIndex = 250;  /* above tiles, below the vectors */
    }
    /* a group switched back on is drawn last: restore the declared order */
    map.on('overlayadd', function () { reorder(map); });
    L.control.scale({metric: true, imperial: false, position: 'bottomleft', maxWidth: 150}).addTo(map);
    if (o.legend) {
      var legend = L.control({position: 'bottomleft'});
      legend.onAdd = function () {
        var d = el('div', 'ratlas-legend');
        L.DomEvent.disableClickPropagation(d);
        L.DomEvent.disableScrollPropagation(d);
        collapsible(d, el('div', 'ratlas-legend-title', o.legend.title), small(map));
        for (var i = 0; i < o.legend.items.length; i++) {
          var it = o.legend.items[i], row = el('div', 'ratlas-legend-row');
          var sw = el('span', 'ratlas-swatch');
          sw.style.background = it.fill || 'transparent';
          sw.style.borderColor = it.stroke;
          if (it.kind === 'outline') { sw.style.borderWidth = '2px'; }
          if (it.kind === 'circle') { sw.className += ' ratlas-swatch-circle'; }
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
  /* a layer's GeoJSON published as a file (the app: the map's script stays small and the same between
     reruns); read synchronously so that layers are added, ordered and labelled as with inline data */
  function fetched(url) {
    /* the map's first script sent every layer's request at once (gis.maps.mapview._prefetch_layers): an
       answer that is in is taken, one still on its way is dropped and asked for here */
    var pre = window.RenewalAtlasPrefetched && window.RenewalAtlasPrefetched[url];
    if (pre) {
      delete window.RenewalAtlasPrefetched[url];
      if (pre.readyState === 4 && pre.status === 200) { return JSON.parse(pre.responseText); }
      pre.abort();
    }
    var x = new XMLHttpRequest();
    x.open('GET', url, false);
    x.send(null);
    return x.status === 200 ? JSON.parse(x.responseText) : {type: 'FeatureCollection', features: []};
  }
  function addLayer(map, parent, data, o) {
    if (typeof data === 'string') { data = fetched(data); }
    var style = styleFn(o);
    var lyr = L.geoJSON(data, {
      style: style,
      interactive: o.interactive,
      pointToLayer: function (f, ll) { return L.circleMarker(ll, style(f)); }
    });
    if (o.interactive && o.tooltip && o.tooltip.length) {
      lyr.bindTooltip(tipFn(o.tooltip, o.sep, o.blockedText),
                      {sticky: true, direction: 'top', className: 'ratlas-tooltip'});
      lyr.on('mouseover mousemove', function (e) { placeTip(map, lyr.getTooltip(), e.containerPoint); });
    }
    if (o.interactive && o.hoverWeight) {
      lyr.on('mouseover', function (e) { if (e.layer.setStyle) { e.layer.setStyle({weight: o.hoverWeight}); } });
      lyr.on('mouseout', function (e) { lyr.resetStyle(e.layer); });
    }
    lyr._ratlasId = o.id;
    lyr._ratlasParcels = o.mode === 'phase';  /* what a filter shows or hides (filter) */
    lyr.addTo(parent);
    orderOf(map).push(lyr);
    if (o.labelField) { addLabels(map, parent, lyr, o); }
    return lyr;
  }
  /* parcels whose properties changed since their layer's file was written (gis/maps/mapview.py patch_group):
     their new properties, and the style and tooltip that follow from them, over the features drawn */
  function patch(map, patches) {
    var order = orderOf(map);
    for (var i = 0; i < order.length; i++) {
      var lyr = order[i], mine = lyr._ratlasId && patches[lyr._ratlasId];
      if (!mine || !lyr.eachLayer) { continue; }
      lyr.eachLayer(function (l) {
        var p = l.feature && l.feature.properties, next = p && mine[p.code];
        if (next) { l.feature.properties = next; lyr.resetStyle(l); }
      });
      var aside = lyr._ratlasAside || [];  /* filtered out: restyled when they come back */
      for (var j = 0; j < aside.length; j++) {
        var next = mine[codeOf(aside[j])];
        if (next) { aside[j].feature.properties = next; }
      }
    }
  }
  function codeOf(l) { return l.feature && l.feature.properties ? l.feature.properties.code : undefined; }
  /* the declared drawing order (a group switched back on, parcels back from a filter are drawn last) */
  function reorder(map) {
    var order = orderOf(map);
    for (var i = 0; i < order.length; i++) {
      if (map.hasLayer(order[i]) && order[i].bringToFront) { order[i].bringToFront(); }
    }
  }
  /* a filter's result on the map the browser holds (gis/maps/mapview.py filter_group): the parcels not in
     it come off their layer (no path, so no tooltip and no click, on svg and canvas alike) and wait aside
     to come back (s.codes null: all of them); the view fits s.bounds when they are new to this map (the
     key of the bounds fitted last is kept in sessionStorage under the session's token, so that a map
     mounted anew does not fit them again): a rerun with the same filter leaves the planner's view alone */
  function filter(map, s) {
    var keep = null, back = false, order = orderOf(map);
    if (s.codes) {
      keep = {};
      for (var i = 0; i < s.codes.length; i++) { keep[s.codes[i]] = true; }
    }
    for (var j = 0; j < order.length; j++) {
      var lyr = order[j];
      if (!lyr._ratlasParcels) { continue; }
      var aside = lyr._ratlasAside || [], still = [], off = [];
      for (var k = 0; k < aside.length; k++) {
        if (keep && !keep[codeOf(aside[k])]) { still.push(aside[k]); continue; }
        lyr.addLayer(aside[k]);
        lyr.resetStyle(aside[k]);
        back = true;
      }
      if (keep) { lyr.eachLayer(function (l) { if (!keep[codeOf(l)]) { off.push(l); } }); }
      if (off.length) { lyr.closeTooltip(); }
      for (var n = 0; n < off.length; n++) { lyr.removeLayer(off[n]); still.push(off[n]); }
      lyr._ratlasAside = still;
    }
    if (back) { reorder(map); }
    var key = s.key || null, slot = 'ratlas:fit:' + (s.token || 'map'), last = map._ratlasFit;
    if (last === undefined) {
      try { last = sessionStorage.getItem(slot); } catch (e) { last = null; }
    }
    if (s.bounds && key !== last) {
      /* a frame later: after a new map's first animation, and after the hidden parcels are repainted (fitting
         in the same task measured slower in bench.interaction: the map's frame shares the page's thread) */
      settled(map, function () { map.fitBounds(s.bounds, {padding: [12, 12], animate: false}); });
    }
    map._ratlasFit = key;
    try {
      if (key === null) { sessionStorage.removeItem(slot); } else { sessionStorage.setItem(slot, key); }
    } catch (e) { /* no storage (private mode): this map remembers it */ }
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
  /* site photos (gis/maps/photos.py): a point per photo and, when its direction is known, a cone turned to
     it (degrees from north, clockwise); drawn from o.minZoom on, with the group; text by textContent only */
  var SVG = 'http://www.w3.org/2000/svg';
  function svgEl(tag, attrs) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs) { e.setAttribute(k, attrs[k]); }
    return e;
  }
  function photoIcon(p, color) {
    var svg = svgEl('svg', {width: 48, height: 48, viewBox: '-24 -24 48 48', 'class': 'ratlas-photo-svg'});
    if (p.direction !== null && p.direction !== undefined) {
      var g = svgEl('g', {transform: 'rotate(' + Number(p.direction) + ')'});
      g.appendChild(svgEl('path', {d: 'M0 0 L-10 -21 A23 23 0 0 1 10 -21 Z', fill: color, 'fill-opacity': 0.5,
                                   stroke: color, 'stroke-width': 1}));
      svg.appendChild(g);
    }
    svg.appendChild(svgEl('circle', {cx: 0, cy: 0, r: 5, fill: color, stroke: '#ffffff', 'stroke-width': 2}));
    return L.divIcon({html: svg, className: 'ratlas-photo', iconSize: [48, 48], iconAnchor: [24, 24]});
  }
  function photoTip(o) {
    return function (layer) {
      var p = layer.options.photo || {}, box = el('div', 'ratlas-tip');
      if (p.code) {
        var row = el('div', 'ratlas-tip-row');
        row.appendChild(el('span', 'ratlas-tip-key', o.codeLabel + o.sep));
        row.appendChild(document.createTextNode(String(p.code)));
        box.appendChild(row);
      }
      if (p.caption) { box.appendChild(el('div', 'ratlas-tip-row', p.caption)); }
      if (p.taken_at) { box.appendChild(el('div', 'ratlas-tip-row', String(p.taken_at).replace('T', ' ').slice(0, 16))); }
      return box;
    };
  }
  function addPhotos(map, parent, data, o) {
    var group = L.layerGroup(), feats = (data && data.features) || [];
    for (var i = 0; i < feats.length; i++) {
      var f = feats[i], c = f.geometry.coordinates, p = f.properties || {};
      /* a click on a photo's point goes on to the map: it picks the parcel under it, as a click beside it would */
      var mk = L.marker([c[1], c[0]], {icon: photoIcon(p, o.color), photoId: p.id, photo: p, keyboard: false,
                                        bubblingMouseEvents: true});
      mk.bindTooltip(photoTip(o), {direction: 'top', className: 'ratlas-tooltip', offset: [0, -10]});
      group.addLayer(mk);
    }
    function update() {
      var want = parent._map && map.getZoom() >= o.minZoom;
      if (want && !parent.hasLayer(group)) { parent.addLayer(group); }
      if (!want && parent.hasLayer(group)) { parent.removeLayer(group); }
    }
    map.on('zoomend', update);
    parent.on('add', update);
    map.whenReady(update);
    map._ratlasPhotos = group;
    return group;
  }
  function addImage(map, parent, o) {
    var img = L.imageOverlay(o.url, o.bounds, {pane: 'ratlasBasemap', opacity: o.opacity,
                                               attribution: o.attribution, interactive: false});
    img.addTo(parent);
    return img;
  }
  /* --- what a rerun must keep. streamlit-folium sends the page its selected_layers with each report (a
     click, a layer switched); our entries ride along: each group on or off, and the view. Nothing is
     sent on a pan (no rerun); the view goes to sessionStorage instead, for the next map to restore. */
  function report(map) {
    var g = window.__GLOBAL_DATA__, groups = map._ratlasGroups || {};
    if (!g || !g.selected_layers || map._ratlasRestoring) { return; }
    for (var k in groups) {
      g.selected_layers['ratlas:group:' + k] = {name: k, url: map.hasLayer(groups[k]) ? 'ratlas:on' : 'ratlas:off'};
    }
    var c = map.getCenter();
    g.selected_layers['ratlas:view'] = {name: 'view', url: 'ratlas:view', lat: c.lat, lng: c.lng, zoom: map.getZoom()};
  }
  function track(map, groups) {
    map._ratlasGroups = groups;
    var g = window.__GLOBAL_DATA__;
    /* the component's first report compares with its default (null): an empty list is the same */
    if (g && g.previous_data && g.previous_data.selected_layers === null) { g.previous_data.selected_layers = []; }
    /* registered before streamlit-folium's own handlers (this runs in the map's script): ours fill
       selected_layers before the component reads it */
    map.on('overlayadd overlayremove click', function () { report(map); });
    map.on('moveend', function () { saveView(map); });
  }
  function saveView(map) {
    if (!map._ratlasToken) { return; }
    var c = map.getCenter();
    try {
      sessionStorage.setItem('ratlas:view:' + map._ratlasToken,
                             JSON.stringify({center: [c.lat, c.lng], zoom: map.getZoom()}));
    } catch (e) { /* no storage (private mode): the page's copy of the view serves */ }
  }
  function shownGroups(map) {
    var out = {}, groups = map._ratlasGroups || {};
    for (var k in groups) { out[k] = map.hasLayer(groups[k]); }
    return out;
  }
  /* fn() once the map has settled the view its own script set: a new map's first fitBounds animates its
     zoom from the next frame on, and Leaflet drops a setView during that animation (or undoes one made
     before it starts); requestAnimFrame callbacks run in order, so this one runs after it has started */
  function settled(map, fn) {
    L.Util.requestAnimFrame(function () {
      if (map._animatingZoom) { map.once('zoomend', fn); } else { fn(); }
    });
  }
  /* once per map: the groups the planner had switched off stay off, the view stays (unless the page fits
     a new result); later calls (the state changed, the map did not) leave the planner's map alone */
  function restore(map, s) {
    if (map._ratlasToken) { return; }
    var groups = map._ratlasGroups || {}, hidden = s.hidden || [];
    map._ratlasRestoring = true;
    for (var i = 0; i < hidden.length; i++) {
      if (groups[hidden[i]] && map.hasLayer(groups[hidden[i]])) { map.removeLayer(groups[hidden[i]]); }
    }
    map._ratlasRestoring = false;
    if (!s.fit) {
      var v = null;
      try { v = JSON.parse(sessionStorage.getItem('ratlas:view:' + s.token) || 'null'); } catch (e) { v = null; }
      if (!v && s.center) { v = {center: s.center, zoom: s.zoom}; }
      if (v && v.center) { settled(map, function () { map.setView(v.center, v.zoom, {animate: false}); }); }
    }
    map._ratlasToken = s.token || 'map';
    saveView(map);  /* the view this map starts with (a fitted result included) is the one to come back to */
  }
  return {init: init, addLayer: addLayer, patch: patch, filter: filter, addImage: addImage, addPhotos: addPhotos, collapsible: collapsible, small: small,
          track: track, restore: restore, shownGroups: shownGroups};
})();
