/* Renewal Atlas: a Leaflet GridLayer drawing the app's vector tile pyramids (gis/maps/vectortiles.py)
   on canvas; RenewalTiles.add(map, group, options) adds one. */
window.RenewalTiles = window.RenewalTiles || (function () {
  var stats = {requested: 0, bytes: 0, decoded: 0, drawn: 0, features: 0, loads: 0, lastLoad: 0, errors: 0,
               decodeMs: 0, drawMs: 0, firstRequest: 0, painted: 0, paintedLoads: 0};
  var utf8 = new TextDecoder('utf-8');

  /* ---- protobuf: just what MVT needs */
  function R(buf) { this.b = buf; this.p = 0; }
  R.prototype.v = function () {
    var b = this.b, r = 0, m = 1, c;
    do { c = b[this.p++]; r += (c & 0x7f) * m; m *= 128; } while (c & 0x80);
    return r;
  };
  R.prototype.skip = function (wire) {
    if (wire === 0) { this.v(); } else if (wire === 1) { this.p += 8; }
    else if (wire === 2) { var n = this.v(); this.p += n; } else if (wire === 5) { this.p += 4; }
    else { throw new Error('bad wire type ' + wire); }
  };
  function zz(n) { return (n % 2) ? -(n + 1) / 2 : n / 2; }
  function readValue(r, end) {
    var out = null, dv;
    while (r.p < end) {
      var tag = r.v(), f = tag >> 3, w = tag & 7;
      if (f === 1) { var n = r.v(); out = utf8.decode(r.b.subarray(r.p, r.p + n)); r.p += n; }
      else if (f === 2) {
        dv = new DataView(r.b.buffer, r.b.byteOffset + r.p, 4); out = dv.getFloat32(0, true); r.p += 4;
      } else if (f === 3) {
        dv = new DataView(r.b.buffer, r.b.byteOffset + r.p, 8); out = dv.getFloat64(0, true); r.p += 8;
      }
      else if (f === 4 || f === 5) { out = r.v(); }
      else if (f === 6) { out = zz(r.v()); }
      else if (f === 7) { out = !!r.v(); }
      else { r.skip(w); }
    }
    return out;
  }
  /* one layer of a tile → flat arrays: coordinates, ring starts, feature ring ranges, boxes */
  function decode(buf, want) {
    var r = new R(new Uint8Array(buf)), layerStart = -1, layerEnd = -1;
    while (r.p < r.b.length) {
      var tag = r.v();
      if ((tag >> 3) === 3 && (tag & 7) === 2) {
        var n = r.v(), s = r.p, e = s + n, name = null, q = new R(r.b);
        q.p = s;
        while (q.p < e) {
          var t2 = q.v();
          if ((t2 >> 3) === 1) { var k = q.v(); name = utf8.decode(q.b.subarray(q.p, q.p + k)); q.p += k; break; }
          q.skip(t2 & 7);
        }
        if (name === want || layerStart < 0) { layerStart = s; layerEnd = e; }
        if (name === want) { break; }
        r.p = e;
      } else { r.skip(tag & 7); }
    }
    var out = {n: 0, extent: 4096, keys: [], values: [], tags: [], ids: [], coords: null, rings: null,
               feats: null, box: null};
    if (layerStart < 0) { return out; }
    r.p = layerStart;
    var geoms = [];
    while (r.p < layerEnd) {
      var tag3 = r.v(), f = tag3 >> 3, w = tag3 & 7;
      if (f === 2 && w === 2) {
        var len = r.v(), end = r.p + len, tags = null, id = 0, gs = -1, ge = -1, type = 0;
        while (r.p < end) {
          var t3 = r.v(), ff = t3 >> 3;
          if (ff === 1) { id = r.v(); }
          else if (ff === 2) { var tl = r.v(), te = r.p + tl; tags = []; while (r.p < te) { tags.push(r.v()); } }
          else if (ff === 3) { type = r.v(); }
          else if (ff === 4) { var gl = r.v(); gs = r.p; ge = r.p + gl; r.p = ge; }
          else { r.skip(t3 & 7); }
        }
        if (type === 3 && gs >= 0) { out.tags.push(tags || []); out.ids.push(id); geoms.push(gs, ge); }
      } else if (f === 3 && w === 2) {
        var kl = r.v(); out.keys.push(utf8.decode(r.b.subarray(r.p, r.p + kl))); r.p += kl;
      }
      else if (f === 4 && w === 2) { var vl = r.v(), ve = r.p + vl; out.values.push(readValue(r, ve)); r.p = ve; }
      else if (f === 5 && w === 0) { out.extent = r.v(); }
      else { r.skip(w); }
    }
    /* geometry commands → coordinates */
    var nf = geoms.length / 2, coords = [], rings = [], feats = new Int32Array(nf + 1), box = new Int32Array(4 * nf);
    for (var i = 0; i < nf; i++) {
      feats[i] = rings.length;
      var g = new R(r.b), x = 0, y = 0, x0 = 1e9, y0 = 1e9, x1 = -1e9, y1 = -1e9;
      g.p = geoms[2 * i];
      var gend = geoms[2 * i + 1];
      while (g.p < gend) {
        var cmd = g.v(), id2 = cmd & 7, count = cmd >> 3;
        if (id2 === 1 || id2 === 2) {
          for (var c = 0; c < count; c++) {
            x += zz(g.v()); y += zz(g.v());
            if (id2 === 1) { rings.push(coords.length); }
            coords.push(x, y);
            if (x < x0) { x0 = x; } if (x > x1) { x1 = x; } if (y < y0) { y0 = y; } if (y > y1) { y1 = y; }
          }
        }
      }
      box[4 * i] = x0; box[4 * i + 1] = y0; box[4 * i + 2] = x1; box[4 * i + 3] = y1;
    }
    feats[nf] = rings.length;
    rings.push(coords.length);
    out.n = nf;
    out.coords = new Int32Array(coords);
    out.rings = new Int32Array(rings);
    out.feats = feats;
    out.box = box;
    return out;
  }
  function prop(t, i, key) {
    var k = t.keys.indexOf(key), tags = t.tags[i];
    if (k < 0) { return null; }
    for (var j = 0; j < tags.length; j += 2) { if (tags[j] === k) { return t.values[tags[j + 1]]; } }
    return null;
  }
  /* a feature's rings as SVG path data: one Path2D built from a string is ~20x faster
     than a moveTo/lineTo call per vertex */
  function tracePath(parts, t, i) {
    var c = t.coords, rs = t.rings;
    for (var r = t.feats[i]; r < t.feats[i + 1]; r++) {
      var s = rs[r], e = rs[r + 1];
      parts.push('M', c[s], c[s + 1], 'L');
      for (var p = s + 2; p < e; p += 2) { parts.push(c[p], c[p + 1]); }
      parts.push('Z');
    }
  }
  function inside(t, i, x, y) {
    var c = t.coords, rs = t.rings, hit = false;
    for (var r = t.feats[i]; r < t.feats[i + 1]; r++) {
      var s = rs[r], e = rs[r + 1];
      for (var p = s, q = e - 2; p < e; q = p, p += 2) {
        if (((c[p + 1] > y) !== (c[q + 1] > y)) &&
            (x < (c[q] - c[p]) * (y - c[p + 1]) / (c[q + 1] - c[p + 1]) + c[p])) { hit = !hit; }
      }
    }
    return hit;
  }
  function bitsOf(b64) {
    var s = atob(b64), a = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) { a[i] = s.charCodeAt(i); }
    return a;
  }

  var Layer = L.GridLayer.extend({
    initialize: function (o) {
      L.GridLayer.prototype.initialize.call(this, {
        pane: o.pane, tileSize: 256, minZoom: o.minZoom, maxZoom: 22, minNativeZoom: o.levels[0],
        updateWhenZooming: false, keepBuffer: 2, className: 'ratlas-vt'
      });
      this.o = o;
      this.cache = {};
      this.order = [];
      this.index = {};
      for (var z in o.tiles) {
        var b = o.tiles[z];
        this.index[z] = {x0: b.x0, y0: b.y0, w: b.w, h: b.h, bits: bitsOf(b.bits)};
      }
    },
    has: function (z, x, y) {
      var b = this.index[z];
      if (!b) { return false; }
      var i = x - b.x0, j = y - b.y0;
      if (i < 0 || j < 0 || i >= b.w || j >= b.h) { return false; }
      var k = j * b.w + i;
      return (b.bits[k >> 3] >> (k & 7)) & 1;
    },
    level: function (z) {
      var lv = this.o.levels, best = lv[0];
      for (var i = 0; i < lv.length; i++) { if (lv[i] <= z) { best = lv[i]; } }
      return best;
    },
    fetchTile: function (z, x, y) {
      var key = z + '/' + x + '/' + y, self = this;
      if (this.cache[key]) { return this.cache[key]; }
      var url = this.o.url.replace('{z}', z).replace('{x}', x).replace('{y}', y);
      if (!stats.requested) { stats.firstRequest = performance.now(); }
      stats.requested++;
      var pr = fetch(url, {cache: 'force-cache'}).then(function (res) {
        if (!res.ok) { throw new Error('tile ' + key + ': HTTP ' + res.status); }
        return res.arrayBuffer();
      }).then(function (buf) {
        stats.bytes += buf.byteLength;
        stats.decoded++;
        var t0 = performance.now(), t = decode(buf, self.o.layer);
        stats.decodeMs += performance.now() - t0;
        return t;
      });
      pr.catch(function () { stats.errors++; delete self.cache[key]; });
      this.cache[key] = pr;
      this.order.push(key);
      if (this.order.length > 400) { delete this.cache[this.order.shift()]; }
      return pr;
    },
    createTile: function (coords, done) {
      var tile = L.DomUtil.create('canvas', 'leaflet-tile'), size = this.getTileSize(),
          ratio = window.devicePixelRatio || 1, self = this;
      tile.width = size.x * ratio;
      tile.height = size.y * ratio;
      var dz = coords.z - this.level(coords.z), z = coords.z - dz,
          x = Math.floor(coords.x / Math.pow(2, dz)), y = Math.floor(coords.y / Math.pow(2, dz));
      if (!this.has(z, x, y)) { setTimeout(function () { done(null, tile); }, 0); return tile; }
      this.fetchTile(z, x, y).then(function (t) {
        var t0 = performance.now();
        self.draw(tile, t, coords, dz, x, y);
        stats.drawMs += performance.now() - t0;
        done(null, tile);
      }, function (err) { done(err, tile); });
      return tile;
    },
    colorOf: function (v) { return this.o.colors[v] || this.o.defaultColor; },
    draw: function (canvas, t, coords, dz, x, y) {
      var o = this.o, ctx = canvas.getContext('2d'), n = Math.pow(2, dz), E = t.extent,
          sx = coords.x - x * n, sy = coords.y - y * n, k = canvas.width / E * n,
          pad = 8 * E / 256, lo = sx * E / n - pad, hi = (sx + 1) * E / n + pad, lo2 = sy * E / n - pad,
          hi2 = (sy + 1) * E / n + pad, ci = t.keys.indexOf(o.classField), parts = {}, paths = {}, used = 0;
      for (var i = 0; i < t.n; i++) {
        var b = t.box;
        if (b[4 * i + 2] < lo || b[4 * i] > hi || b[4 * i + 3] < lo2 || b[4 * i + 1] > hi2) { continue; }
        var cls = null, tags = t.tags[i];
        for (var j = 0; j < tags.length; j += 2) { if (tags[j] === ci) { cls = t.values[tags[j + 1]]; break; } }
        var col = this.colorOf(cls);
        tracePath(parts[col] || (parts[col] = []), t, i);
        used++;
      }
      for (var pc in parts) { paths[pc] = new Path2D(parts[pc].join(' ')); }
      ctx.setTransform(k, 0, 0, k, -sx * canvas.width, -sy * canvas.width);
      ctx.globalAlpha = o.fillOpacity;
      for (var c in paths) { ctx.fillStyle = c; ctx.fill(paths[c], 'evenodd'); }
      if (coords.z >= o.strokeMinZoom) {
        ctx.globalAlpha = o.strokeOpacity;
        ctx.strokeStyle = o.strokeColor;
        ctx.lineWidth = o.strokeWidth * (coords.z >= o.strokeMinZoom + 3 ? 1.6 : 1) *
                        (window.devicePixelRatio || 1) / k;
        ctx.lineJoin = 'round';
        for (var c2 in paths) { ctx.stroke(paths[c2]); }
      }
      stats.drawn++;
      stats.features += used;
    },
    /* the feature under a map point, from the tile data already loaded; null when none */
    featureAt: function (latlng) {
      var map = this._map;
      if (!map) { return null; }
      var z = this.level(Math.round(map.getZoom())), p = map.project(latlng, z), ts = 256,
          x = Math.floor(p.x / ts), y = Math.floor(p.y / ts), key = z + '/' + x + '/' + y, pr = this.cache[key];
      if (!pr || !pr.done) { return null; }
      var t = pr.done, E = t.extent, ux = (p.x / ts - x) * E, uy = (p.y / ts - y) * E;
      for (var i = t.n - 1; i >= 0; i--) {
        var b = t.box;
        if (ux < b[4 * i] || ux > b[4 * i + 2] || uy < b[4 * i + 1] || uy > b[4 * i + 3]) { continue; }
        if (inside(t, i, ux, uy)) { return {tile: t, i: i}; }
      }
      return null;
    }
  });

  function tipNode(o, hit) {
    var box = document.createElement('div');
    box.className = 'ratlas-tip';
    var head = document.createElement('div');
    head.className = 'ratlas-tip-row';
    head.style.fontWeight = 'bold';
    head.textContent = o.title;
    box.appendChild(head);
    for (var i = 0; i < o.tooltip.length; i++) {
      var f = o.tooltip[i], v = prop(hit.tile, hit.i, f[1]);
      if (v === null || v === undefined || v === '') { continue; }
      if (f[1] === o.classField && o.labels[v]) { v = o.labels[v]; }
      if (f[2] === 'area') {
        v = Math.round(v).toLocaleString() + ' m\u00b2 (' + (v / (10000 / 15)).toFixed(2) + ' ' + o.mu + ')';
      }
      else if (o.valueLabels[v]) { v = o.valueLabels[v]; }
      var row = document.createElement('div'), keyEl = document.createElement('span');
      row.className = 'ratlas-tip-row';
      keyEl.className = 'ratlas-tip-key';
      keyEl.textContent = f[0] + o.sep;
      row.appendChild(keyEl);
      row.appendChild(document.createTextNode(String(v)));
      box.appendChild(row);
    }
    return box;
  }

  function legendControl(o) {
    var c = L.control({position: 'bottomright'});
    c.onAdd = function () {
      var d = document.createElement('div');
      d.className = 'ratlas-legend';
      L.DomEvent.disableClickPropagation(d);
      L.DomEvent.disableScrollPropagation(d);
      var t = document.createElement('div');
      t.className = 'ratlas-legend-title';
      t.textContent = o.legend.title;
      /* folded to its title from the start: a dozen land-use classes would cover the map's south-east */
      if (window.RenewalAtlas && RenewalAtlas.collapsible) { RenewalAtlas.collapsible(d, t, true); } else { d.appendChild(t); }
      for (var i = 0; i < o.legend.items.length; i++) {
        var it = o.legend.items[i], row = document.createElement('div'), sw = document.createElement('span'),
            lab = document.createElement('span');
        row.className = 'ratlas-legend-row';
        sw.className = 'ratlas-swatch';
        sw.style.background = it.fill;
        sw.style.opacity = String(Math.min(1, o.fillOpacity + 0.25));
        lab.className = 'ratlas-legend-label';
        lab.textContent = it.label;
        row.appendChild(sw);
        row.appendChild(lab);
        d.appendChild(row);
      }
      return d;
    };
    return c;
  }

  function add(map, parent, o) {
    if (!map.getPane(o.pane)) {
      map.createPane(o.pane);
      map.getPane(o.pane).style.zIndex = 300;  /* above the imagery, below the vector layers */
      map.getPane(o.pane).style.pointerEvents = 'none';
    }
    var layer = new Layer(o), legend = o.legend ? legendControl(o) : null, tip = null, frame = 0;
    var origFetch = layer.fetchTile;
    layer.fetchTile = function (z, x, y) {
      var pr = origFetch.call(layer, z, x, y);
      pr.then(function (t) { pr.done = t; }, function () {});
      return pr;
    };
    layer.on('load', function () {
      var n = ++stats.loads;
      stats.lastLoad = performance.now();
      /* when the browser has painted what this load drew (benchmarks and tests read it) */
      requestAnimationFrame(function () { requestAnimationFrame(function () {
        if (stats.loads === n) { stats.painted = performance.now(); stats.paintedLoads = n; }
      }); });
    });
    function onMove(e) {
      if (frame) { return; }
      frame = requestAnimationFrame(function () {
        frame = 0;
        /* a tracked parcel (or any feature we do not know) under the mouse keeps its own tooltip;
           over a context area (zone, village …) the cadastre parcel's tooltip wins */
        var target = e.originalEvent && e.originalEvent.target, over = null, area = false;
        if (target && target.classList && target.classList.contains('leaflet-interactive')) {
          over = (map._targets && map._targets[L.Util.stamp(target)]) || {};
          var pr = over.feature && over.feature.properties;
          area = !!(pr && pr.layer && pr.phase === undefined && pr.layer !== 'selected');
        }
        var hit = ((!over || area) && map.getZoom() >= o.tooltipMinZoom) ? layer.featureAt(e.latlng) : null;
        if (!hit) { if (tip) { map.closeTooltip(tip); } return; }
        if (area) {
          var parents = over._eventParents || {};
          for (var k in parents) { if (parents[k].closeTooltip) { parents[k].closeTooltip(); } }
        }
        tip = tip || L.tooltip({direction: 'top', offset: [0, -8], className: 'ratlas-tooltip', opacity: 0.95});
        tip.setLatLng(e.latlng).setContent(tipNode(o, hit));
        if (!map.hasLayer(tip)) { map.openTooltip(tip); }
      });
    }
    /* a zone's or village's tooltip that opens over a cadastre parcel (e.g. under a pointer that
       has not moved since the map was redrawn) gives way, as it does on mousemove */
    var waiting = null;  /* such a tooltip that opened before the tiles under it had loaded */
    function onTooltip(e) {
      if (e.tooltip === tip || e.tooltip.options.permanent || map.getZoom() < o.tooltipMinZoom ||
          !e.tooltip.getLatLng()) { return; }
      var src = e.tooltip._source, one = src && src.getLayers ? src.getLayers()[0] : src,
          pr = one && one.feature && one.feature.properties;
      if (!(pr && pr.layer && pr.phase === undefined && pr.layer !== 'selected')) { return; }
      /* the tooltip belongs to the feature's group, not to the feature: close the tooltip itself */
      if (layer.featureAt(e.tooltip.getLatLng())) { map.closeTooltip(e.tooltip); } else { waiting = e; }
    }
    layer.on('load', function () {
      var w = waiting;
      waiting = null;
      if (w && map.hasLayer(w.tooltip)) { onTooltip(w); }
    });
    layer.on('add', function () {
      if (legend) { legend.addTo(map); }
      if (o.tooltip && o.tooltip.length) {
        map.on('mousemove', onMove);
        map.on('tooltipopen', onTooltip);
        /* one that opened before this layer was added (the map redrawn under a still pointer) */
        map.eachLayer(function (l) { if (l instanceof L.Tooltip) { onTooltip({tooltip: l}); } });
      }
    });
    layer.on('remove', function () {
      if (legend) { legend.remove(); }
      map.off('mousemove', onMove);
      map.off('tooltipopen', onTooltip);
      if (tip) { map.closeTooltip(tip); }
    });
    /* added after the script's fitBounds, so the first tiles fetched are the ones of the first view */
    setTimeout(function () { parent.addLayer(layer); }, 0);
    return layer;
  }
  return {add: add, stats: stats, decode: decode};
})();
