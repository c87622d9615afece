/* The zoomable image map of templates/imagemap.html: a classic script with no dependencies, so the
   page works opened from disk. Data comes from the inline <script type="application/json"> block;
   thumbnails are cut from the sprite sheets it names. Every string from the data (class names) is
   written with textContent, never parsed as HTML. */
(function () {
  "use strict";

  var root = document.querySelector(".imagemap");
  var source = document.getElementById("imagemap-data");
  if (!root || !source) return;
  var data = JSON.parse(source.textContent);
  var canvas = root.querySelector(".imagemap-canvas");
  var ctx = canvas.getContext("2d");
  var tooltip = root.querySelector(".imagemap-tooltip");
  var statusLine = root.querySelector(".imagemap-status");
  var panel = root.querySelector(".imagemap-neighbours");
  var panelTitle = root.querySelector(".imagemap-neighbours-title");
  var summary = root.querySelector(".imagemap-neighbours-summary");
  var list = root.querySelector(".imagemap-neighbour-list");
  var legend = root.querySelector(".imagemap-legend");

  var n = data.count;
  var T = data.sprites.thumb;             // one thumbnail is T x T world units
  var W = data.cols * T, H = data.rows * T;
  var MIN_THUMB_PX = 2.5;                 // below this on screen a thumbnail is drawn as a coloured square
  var DRAG_SLOP = 5;                      // pointer travel (px) that turns a click into a drag

  // ---- positions of both layouts, in world units (top-left corner of each thumbnail) ----
  function layoutPositions(kind) {
    var xs = new Float32Array(n), ys = new Float32Array(n);
    for (var i = 0; i < n; i++) {
      if (kind === "grid") {
        xs[i] = (data.cell[i] % data.cols) * T;
        ys[i] = Math.floor(data.cell[i] / data.cols) * T;
      } else {
        xs[i] = data.x[i] * (W - T);
        ys[i] = data.y[i] * (H - T);
      }
    }
    return { x: xs, y: ys };
  }
  var layouts = { placed: layoutPositions("placed"), grid: layoutPositions("grid") };
  var pos = { x: new Float32Array(layouts.placed.x), y: new Float32Array(layouts.placed.y) };

  // ---- spatial index: buckets of T x T world units, so hover tests a handful of images ----
  var BX = Math.ceil(W / T) + 1, BY = Math.ceil(H / T) + 1;
  var bucketStart = new Int32Array(BX * BY + 1), bucketItems = new Int32Array(n);
  function bucketOf(i) {
    var bx = Math.min(BX - 1, Math.max(0, Math.floor(pos.x[i] / T)));
    var by = Math.min(BY - 1, Math.max(0, Math.floor(pos.y[i] / T)));
    return by * BX + bx;
  }
  function buildIndex() {
    bucketStart.fill(0);
    for (var i = 0; i < n; i++) bucketStart[bucketOf(i) + 1]++;
    for (var b = 0; b < BX * BY; b++) bucketStart[b + 1] += bucketStart[b];
    var fill = bucketStart.slice(0, BX * BY);
    for (var j = 0; j < n; j++) bucketItems[fill[bucketOf(j)]++] = j;
  }
  // the topmost (last drawn) image whose thumbnail covers world point (wx, wy), or -1
  function hit(wx, wy) {
    var best = -1;
    var bx = Math.floor(wx / T), by = Math.floor(wy / T);
    for (var y = by - 1; y <= by; y++) {
      for (var x = bx - 1; x <= bx; x++) {
        if (x < 0 || y < 0 || x >= BX || y >= BY) continue;
        var b = y * BX + x;
        for (var k = bucketStart[b]; k < bucketStart[b + 1]; k++) {
          var i = bucketItems[k];
          if (i > best && wx >= pos.x[i] && wx < pos.x[i] + T && wy >= pos.y[i] && wy < pos.y[i] + T) best = i;
        }
      }
    }
    return best;
  }
  buildIndex();

  // ---- sprite sheets ----
  var loaded = data.sprites.files.map(function () { return false; });
  var sheets = data.sprites.files.map(function (file, k) {
    var img = new Image();
    img.onload = function () { loaded[k] = true; requestDraw(); };
    img.src = file;
    return img;
  });
  // where each thumbnail lies in its sheet, computed once: drawing 70K images a frame must not allocate
  var spriteSheet = new Int32Array(n), spriteX = new Int32Array(n), spriteY = new Int32Array(n);
  for (var s = 0; s < n; s++) {
    var j = s % data.sprites.per_sheet;
    spriteSheet[s] = Math.floor(s / data.sprites.per_sheet);
    spriteX[s] = (j % data.sprites.cols) * T;
    spriteY[s] = Math.floor(j / data.sprites.cols) * T;
  }
  function spriteOf(i) { return { img: sheets[spriteSheet[i]], sx: spriteX[i], sy: spriteY[i] }; }
  function ready(img) { return img && img.complete && img.naturalWidth > 0; }

  // ---- view: screen = world * scale + offset (CSS pixels) ----
  var view = { scale: 1, ox: 0, oy: 0 };
  var dpr = 1, cssW = 1, cssH = 1, fitScale = 1, fitted = false;
  var hovered = -1, selected = -1, keyboardMode = false;
  // the cross the keyboard acts on, as an offset (CSS px) from the canvas centre: a reset puts it on the
  // image nearest the centre, since the middle of a t-SNE map is often empty and Enter there would do nothing
  var crossDX = 0, crossDY = 0;
  function crossX() { return cssW / 2 + crossDX; }
  function crossY() { return cssH / 2 + crossDY; }

  function resize() {
    dpr = window.devicePixelRatio || 1;
    cssW = Math.max(1, canvas.clientWidth);
    cssH = Math.max(1, canvas.clientHeight);
    canvas.width = Math.round(cssW * dpr);
    canvas.height = Math.round(cssH * dpr);
    fitScale = Math.min(cssW / W, cssH / H) * 0.96;
    if (!fitted) { fitted = true; reset(); return; }
    crossDX = Math.max(-cssW / 2, Math.min(cssW / 2, crossDX));  // a smaller canvas keeps the cross on it
    crossDY = Math.max(-cssH / 2, Math.min(cssH / 2, crossDY));
    requestDraw();
  }
  function reset() {
    view.scale = fitScale;
    view.ox = (cssW - W * view.scale) / 2;
    view.oy = (cssH - H * view.scale) / 2;
    crossDX = crossDY = 0;
    placeCross();
    requestDraw();
  }
  // move the cross onto the centre of the image nearest it, if that image is on screen
  function placeCross() {
    var w = toWorld(crossX(), crossY()), best = -1, bestD = Infinity;
    for (var i = 0; i < n; i++) {
      var dx = pos.x[i] + T / 2 - w.x, dy = pos.y[i] + T / 2 - w.y, d = dx * dx + dy * dy;
      if (d < bestD) { bestD = d; best = i; }
    }
    if (best < 0) return;
    var sx = (pos.x[best] + T / 2) * view.scale + view.ox, sy = (pos.y[best] + T / 2) * view.scale + view.oy;
    if (sx < 0 || sy < 0 || sx > cssW || sy > cssH) return;
    crossDX = sx - cssW / 2;
    crossDY = sy - cssH / 2;
  }
  function zoomAt(factor, sx, sy) {
    var next = Math.min(Math.max(view.scale * factor, fitScale * 0.5), Math.max(8, fitScale * 4));
    factor = next / view.scale;
    view.ox = sx - (sx - view.ox) * factor;
    view.oy = sy - (sy - view.oy) * factor;
    view.scale = next;
    requestDraw();
  }
  function pan(dx, dy) { view.ox += dx; view.oy += dy; requestDraw(); }
  function toWorld(sx, sy) { return { x: (sx - view.ox) / view.scale, y: (sy - view.oy) / view.scale }; }

  // ---- drawing ----
  var pending = false;
  function requestDraw() {
    if (!pending) { pending = true; window.requestAnimationFrame(draw); }
  }
  function draw() {
    pending = false;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, cssW, cssH);
    var size = T * view.scale;
    ctx.imageSmoothingEnabled = size < T;
    for (var i = 0; i < n; i++) {
      var sx = pos.x[i] * view.scale + view.ox, sy = pos.y[i] * view.scale + view.oy;
      if (sx > cssW || sy > cssH || sx + size < 0 || sy + size < 0) continue;
      var img = size >= MIN_THUMB_PX ? sheets[spriteSheet[i]] : null;
      if (img && loaded[spriteSheet[i]]) {
        ctx.drawImage(img, spriteX[i], spriteY[i], T, T, sx, sy, size, size);
      } else {
        ctx.fillStyle = data.colors[data.label[i]];
        ctx.fillRect(sx, sy, Math.max(size, 1), Math.max(size, 1));
      }
    }
    outline(selected, "#1a73e8", 3);
    outline(hovered, "#111", 2);
    if (keyboardMode && document.activeElement === canvas) {
      ctx.strokeStyle = "#1a73e8";
      ctx.lineWidth = 2;
      ctx.beginPath();
      var cx = crossX(), cy = crossY();
      ctx.moveTo(cx - 9, cy); ctx.lineTo(cx + 9, cy);
      ctx.moveTo(cx, cy - 9); ctx.lineTo(cx, cy + 9);
      ctx.stroke();
    }
  }
  function outline(i, color, width) {
    if (i < 0) return;
    var size = Math.max(T * view.scale, 4);
    ctx.strokeStyle = color;
    ctx.lineWidth = width;
    ctx.strokeRect(pos.x[i] * view.scale + view.ox - width / 2, pos.y[i] * view.scale + view.oy - width / 2,
                   size + width, size + width);
  }

  // ---- what an image is: class, and the model's prediction and its probability where the data has them ----
  var hasPredictions = !!(data.pred && data.predicted && data.pred.length === n);
  var hasProbabilities = !!(hasPredictions && data.prob && data.prob.length === n);
  function describe(i) {
    var text = "class: " + data.classes[data.label[i]];
    if (!hasPredictions) return text;
    text += "\npredicted: " + data.predicted[data.pred[i]];
    if (hasProbabilities) text += " " + (data.prob[i] * 100).toFixed(1) + "%";
    return text + (data.pred[i] === data.label[i] ? "" : " (wrong)");
  }
  function describeInline(i) { return describe(i).replace(/\n/g, ", "); }
  function showTooltip(i, sx, sy) {
    if (i < 0) { tooltip.hidden = true; return; }
    tooltip.textContent = describe(i);
    tooltip.hidden = false;
    var left = Math.min(sx + 14, cssW - tooltip.offsetWidth - 4);
    var top = sy + 14 + tooltip.offsetHeight > cssH ? sy - tooltip.offsetHeight - 10 : sy + 14;
    tooltip.style.left = Math.max(0, left) + "px";
    tooltip.style.top = Math.max(0, top) + "px";
  }
  function setHover(i, sx, sy) {
    if (i !== hovered) { hovered = i; requestDraw(); }
    showTooltip(i, sx, sy);
  }

  // ---- nearest neighbours panel ----
  function thumbCanvas(i) {
    var c = document.createElement("canvas");
    c.width = T; c.height = T;
    var sprite = spriteOf(i);
    var paint = function () { c.getContext("2d").drawImage(sprite.img, sprite.sx, sprite.sy, T, T, 0, 0, T, T); };
    if (ready(sprite.img)) paint(); else sprite.img.addEventListener("load", paint);
    return c;
  }
  // the query's button puts it under the cross and goes back to the map; a neighbour's opens its own neighbours
  function item(i, caption, extra, label, isQuery) {
    var li = document.createElement("li");
    if (isQuery) li.className = "query";
    var button = document.createElement("button");
    button.type = "button";
    button.setAttribute("data-image", String(i));
    button.setAttribute("aria-label", label);
    button.appendChild(thumbCanvas(i));
    button.addEventListener("click", function () {
      centreOn(i);
      if (isQuery) canvas.focus(); else select(i, true);
    });
    li.appendChild(button);
    var name = document.createElement("div");
    name.textContent = caption;
    name.style.color = data.colors[data.label[i]];
    li.appendChild(name);
    var more = document.createElement("div");
    more.className = "muted";
    more.textContent = extra;
    li.appendChild(more);
    return li;
  }
  // Show image i's neighbours (i < 0 hides them). The summary is said once: with focusPanel (a keyboard
  // user's Enter, or a neighbour's button) the focus moves to the panel's heading, which has the summary
  // as its description; otherwise (a click on the map, whose focus stays there) the status line says it.
  function select(i, focusPanel) {
    selected = i;
    requestDraw();
    if (i < 0) { panel.hidden = true; return; }
    var k = data.neighbours.k;
    list.replaceChildren();
    list.appendChild(item(i, data.classes[data.label[i]], hasPredictions ? "predicted " + data.predicted[data.pred[i]] : "",
                          "Selected image, " + describeInline(i) + ": show it under the map's cross", true));
    var same = 0;
    for (var j = 0; j < k; j++) {
      var nb = data.neighbours.index[i * k + j], distance = data.neighbours.distance[i * k + j];
      if (data.label[nb] === data.label[i]) same++;
      list.appendChild(item(nb, data.classes[data.label[nb]], "distance " + distance,
                            "Neighbour " + (j + 1) + " of " + k + ", " + describeInline(nb) + ", distance " + distance +
                            ": show its nearest neighbours", false));
    }
    var text = "Selected image: " + describeInline(i) + ". " +
      (k > 0 ? same + " of its " + k + " nearest neighbours share its class." : "This map records no neighbours.");
    summary.textContent = text;
    panel.hidden = false;
    if (focusPanel) panelTitle.focus(); else statusLine.textContent = text;
  }
  // put image i under the cross
  function centreOn(i) {
    view.ox = crossX() - (pos.x[i] + T / 2) * view.scale;
    view.oy = crossY() - (pos.y[i] + T / 2) * view.scale;
    requestDraw();
  }
  // Escape anywhere in the panel goes back to the map, where the cross is on the image last opened
  panel.addEventListener("keydown", function (e) {
    if (e.key !== "Escape" || e.altKey || e.ctrlKey || e.metaKey) return;
    e.preventDefault();
    canvas.focus();
  });

  // ---- layouts: animate from the current positions to the chosen ones ----
  var animation = 0;
  function switchLayout(kind) {
    var from = { x: new Float32Array(pos.x), y: new Float32Array(pos.y) }, to = layouts[kind];
    var start = null, token = ++animation;
    var reduce = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    function step(now) {
      if (token !== animation) return;
      if (start === null) start = now;
      var t = reduce ? 1 : Math.min(1, (now - start) / 400);
      var e = t * t * (3 - 2 * t);
      for (var i = 0; i < n; i++) {
        pos.x[i] = from.x[i] + (to.x[i] - from.x[i]) * e;
        pos.y[i] = from.y[i] + (to.y[i] - from.y[i]) * e;
      }
      draw();
      if (t < 1) { window.requestAnimationFrame(step); return; }
      buildIndex();
      if (underCross() < 0) { placeCross(); requestDraw(); }  // the new layout may have left the cross on nothing
    }
    window.requestAnimationFrame(step);
  }
  root.querySelectorAll('input[name="imagemap-layout"]').forEach(function (input) {
    input.addEventListener("change", function () { if (input.checked) switchLayout(input.value); });
  });
  root.querySelectorAll("button[data-action]").forEach(function (button) {
    button.addEventListener("click", function () {
      var action = button.getAttribute("data-action");
      if (action === "zoom-in") zoomAt(1.5, cssW / 2, cssH / 2);
      else if (action === "zoom-out") zoomAt(1 / 1.5, cssW / 2, cssH / 2);
      else reset();
    });
  });

  // ---- pointer input: mouse, pen and touch (one finger pans, two pinch) ----
  var pointers = new Map(), moved = 0, pinch = null;
  function local(e) {
    var r = canvas.getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  }
  canvas.addEventListener("pointerdown", function (e) {
    canvas.setPointerCapture(e.pointerId);
    pointers.set(e.pointerId, local(e));
    moved = 0;
    keyboardMode = false;
    if (pointers.size === 2) {
      var p = Array.from(pointers.values());
      pinch = { d: Math.hypot(p[0].x - p[1].x, p[0].y - p[1].y) };
    }
    canvas.classList.add("dragging");
  });
  canvas.addEventListener("pointermove", function (e) {
    var p = local(e);
    var last = pointers.get(e.pointerId);
    if (!last) {
      if (e.pointerType !== "touch") { var w = toWorld(p.x, p.y); setHover(hit(w.x, w.y), p.x, p.y); }
      return;
    }
    pointers.set(e.pointerId, p);
    if (pointers.size === 2 && pinch) {
      var q = Array.from(pointers.values());
      var d = Math.hypot(q[0].x - q[1].x, q[0].y - q[1].y);
      if (pinch.d > 0) zoomAt(d / pinch.d, (q[0].x + q[1].x) / 2, (q[0].y + q[1].y) / 2);
      pinch.d = d;
      moved += DRAG_SLOP;
      return;
    }
    moved += Math.abs(p.x - last.x) + Math.abs(p.y - last.y);
    if (moved > DRAG_SLOP) { pan(p.x - last.x, p.y - last.y); setHover(-1); }
  });
  function release(e) {
    var p = local(e);
    var wasClick = pointers.size === 1 && moved <= DRAG_SLOP && e.type === "pointerup";
    pointers.delete(e.pointerId);
    if (pointers.size < 2) pinch = null;
    if (pointers.size === 0) canvas.classList.remove("dragging");
    if (wasClick) {
      var w = toWorld(p.x, p.y), i = hit(w.x, w.y);
      setHover(i, p.x, p.y);
      select(i, false);
    }
  }
  canvas.addEventListener("pointerup", release);
  canvas.addEventListener("pointercancel", release);
  canvas.addEventListener("pointerleave", function (e) { if (e.pointerType !== "touch") setHover(-1); });
  canvas.addEventListener("wheel", function (e) {
    e.preventDefault();
    var p = local(e);
    // a wheel notch is ~100 px of deltaY (lines/pages scaled alike); trackpads send small deltas
    var delta = e.deltaY * (e.deltaMode === 1 ? 33 : e.deltaMode === 2 ? 400 : 1);
    zoomAt(Math.exp(-delta * 0.0015), p.x, p.y);
  }, { passive: false });

  // ---- keyboard: arrows pan, +/- zoom, 0 resets, Enter opens the image under the cross ----
  function underCross() {
    var w = toWorld(crossX(), crossY());
    return hit(w.x, w.y);
  }
  function announceCross() {
    var i = underCross();
    hovered = i;
    if (i >= 0) {
      showTooltip(i, crossX(), crossY());
      statusLine.textContent = "Under the cross: " + describe(i).replace(/\n/g, "; ");
    } else {
      tooltip.hidden = true;
      statusLine.textContent = "No image under the cross.";
    }
    requestDraw();
  }
  canvas.addEventListener("keydown", function (e) {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    var stepPx = e.shiftKey ? cssW / 2 : Math.max(T * view.scale, 40);
    var handled = true;
    switch (e.key) {
      case "ArrowLeft": pan(stepPx, 0); break;
      case "ArrowRight": pan(-stepPx, 0); break;
      case "ArrowUp": pan(0, stepPx); break;
      case "ArrowDown": pan(0, -stepPx); break;
      case "+": case "=": zoomAt(1.5, crossX(), crossY()); break;
      case "-": case "_": zoomAt(1 / 1.5, crossX(), crossY()); break;
      case "0": reset(); break;
      case "Enter": case " ": break;
      case "Escape": break;
      default: handled = false;
    }
    if (!handled) return;
    e.preventDefault();
    keyboardMode = true;
    if (e.key === "Escape") { select(-1); tooltip.hidden = true; return; }
    if (e.key === "Enter" || e.key === " ") {
      var i = underCross();
      if (i >= 0) { select(i, true); return; }  // the focus moves to the neighbours, which say the summary
    }
    announceCross();
  });
  canvas.addEventListener("focus", function () {
    keyboardMode = canvas.matches(":focus-visible");
    // a keyboard user arriving (or coming back from the neighbours) hears what Enter would open
    if (keyboardMode) announceCross(); else requestDraw();
  });
  canvas.addEventListener("blur", function () { keyboardMode = false; tooltip.hidden = true; requestDraw(); });

  // ---- legend: one entry per class, colour swatch and name ----
  if (legend) {
    data.classes.forEach(function (name, c) {
      var li = document.createElement("li");
      var swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = data.colors[c];
      li.appendChild(swatch);
      li.appendChild(document.createTextNode(name));
      legend.appendChild(li);
    });
    var key = legend.closest(".imagemap-key");
    if (key) key.hidden = false;
  }

  if (window.ResizeObserver) new ResizeObserver(resize).observe(canvas);
  else window.addEventListener("resize", resize);
  resize();
})();
