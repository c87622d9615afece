// Pan and zoom of the unit graph page (templates/unitgraph.html) by changing its SVG's viewBox.
// A classic script with no network access, so the page works opened from disk.
(function () {
  "use strict";
  var box = document.getElementById("unitgraph");
  if (!box) { return; }
  var svg = box.querySelector("svg");
  var status = document.getElementById("unitgraph-status");
  var W = Number(svg.getAttribute("data-width")), H = Number(svg.getAttribute("data-height"));
  var view = { x: 0, y: 0, w: W, h: H };
  var MIN_W = Math.min(W, 120), MAX_W = W * 2;

  function apply() {
    svg.setAttribute("viewBox", [view.x, view.y, view.w, view.h].map(function (v) { return v.toFixed(1); }).join(" "));
    var zoom = W / view.w;
    status.textContent = zoom <= 1.001 && view.x === 0 && view.y === 0 ? "Whole graph." : "Zoom " + zoom.toFixed(1) + "x.";
  }

  function zoomAt(factor, cx, cy) {
    var w = Math.min(MAX_W, Math.max(MIN_W, view.w / factor));
    var f = w / view.w;
    view.x = cx - (cx - view.x) * f;
    view.y = cy - (cy - view.y) * f;
    view.w = w;
    view.h = view.h * f;
    apply();
  }

  function pan(dx, dy) {
    view.x += dx * view.w;
    view.y += dy * view.h;
    apply();
  }

  function reset() {
    view = { x: 0, y: 0, w: W, h: H };
    apply();
  }

  function toGraph(clientX, clientY) {
    var m = svg.getScreenCTM();
    if (!m) { return { x: view.x + view.w / 2, y: view.y + view.h / 2 }; }
    var p = svg.createSVGPoint();
    p.x = clientX;
    p.y = clientY;
    return p.matrixTransform(m.inverse());
  }

  box.addEventListener("keydown", function (e) {
    var handled = true;
    switch (e.key) {
      case "ArrowLeft": pan(-0.1, 0); break;
      case "ArrowRight": pan(0.1, 0); break;
      case "ArrowUp": pan(0, -0.1); break;
      case "ArrowDown": pan(0, 0.1); break;
      case "+": case "=": zoomAt(1.25, view.x + view.w / 2, view.y + view.h / 2); break;
      case "-": case "_": zoomAt(0.8, view.x + view.w / 2, view.y + view.h / 2); break;
      case "0": reset(); break;
      default: handled = false;
    }
    if (handled) { e.preventDefault(); }
  });

  // Tab moves from unit to unit: a unit outside the view brings the view to it, at the same zoom
  box.addEventListener("focusin", function (e) {
    var link = e.target.closest ? e.target.closest("a") : null;
    var hitBox = link ? link.querySelector("rect.hit") : null;
    if (!hitBox) { return; }
    var x = Number(hitBox.getAttribute("x")), y = Number(hitBox.getAttribute("y"));
    var s = Number(hitBox.getAttribute("width"));
    if (x >= view.x && y >= view.y && x + s <= view.x + view.w && y + s <= view.y + view.h) { return; }
    view.x = x + s / 2 - view.w / 2;
    view.y = y + s / 2 - view.h / 2;
    apply();
  });

  // the toolbar's buttons do what the keys do, for a pointer or a touch screen
  document.querySelectorAll("[data-graph]").forEach(function (button) {
    button.addEventListener("click", function () {
      var action = button.getAttribute("data-graph");
      if (action === "in") { zoomAt(1.25, view.x + view.w / 2, view.y + view.h / 2); }
      else if (action === "out") { zoomAt(0.8, view.x + view.w / 2, view.y + view.h / 2); }
      else { reset(); }
    });
  });

  box.addEventListener("wheel", function (e) {
    e.preventDefault();
    var p = toGraph(e.clientX, e.clientY);
    zoomAt(e.deltaY < 0 ? 1.15 : 1 / 1.15, p.x, p.y);
  }, { passive: false });

  // drag to pan; a drag that moved is not a click on the thumbnail it started on
  var drag = null, moved = false;
  box.addEventListener("pointerdown", function (e) {
    if (e.button !== 0) { return; }
    drag = { x: e.clientX, y: e.clientY, start: toGraph(e.clientX, e.clientY), vx: view.x, vy: view.y };
    moved = false;
  });
  box.addEventListener("pointermove", function (e) {
    if (!drag) { return; }
    if (!moved && Math.abs(e.clientX - drag.x) + Math.abs(e.clientY - drag.y) < 5) { return; }
    if (!moved) { box.setPointerCapture(e.pointerId); box.classList.add("dragging"); }
    moved = true;
    var m = svg.getScreenCTM();
    var scale = m ? m.a : 1;
    view.x = drag.vx - (e.clientX - drag.x) / scale;
    view.y = drag.vy - (e.clientY - drag.y) / scale;
    apply();
  });
  function end() { drag = null; box.classList.remove("dragging"); }
  box.addEventListener("pointerup", end);
  box.addEventListener("pointercancel", end);
  box.addEventListener("click", function (e) {
    if (moved) { e.preventDefault(); e.stopPropagation(); moved = false; }
    else if (e.target === box || e.target.closest("a") === null) { box.focus(); }
  }, true);
  apply();
}());
