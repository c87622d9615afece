// The unit atlas table (templates/atlas.html): sort buttons on the columns that carry numbers
// (data-value on their cells), and a filter for flagged units. A classic script, no network access,
// so the page works opened from disk; without it the table reads in unit order.
(function () {
  "use strict";
  var table = document.getElementById("atlas-units");
  if (!table) { return; }
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var status = document.getElementById("atlas-status");

  function value(row, col) {
    if (col === 0) { return Number(row.getAttribute("data-unit")); }
    var v = row.cells[col].getAttribute("data-value");
    return v === null ? NaN : Number(v);
  }

  function sortBy(col) {
    var th = heads[col];
    // numbers read largest first on the first press (the strongest units), the unit index smallest first
    var first = col === 0 ? "ascending" : "descending";
    var order = th.getAttribute("aria-sort") === first ? (first === "ascending" ? "descending" : "ascending") : first;
    var sign = order === "ascending" ? 1 : -1;
    var sorted = rows.slice().sort(function (a, b) {
      var x = value(a, col), y = value(b, col);
      if (isNaN(x) !== isNaN(y)) { return isNaN(x) ? 1 : -1; }  // not measured: always last
      if (!isNaN(x) && x !== y) { return sign * (x - y); }
      return value(a, 0) - value(b, 0);                          // ties in unit order
    });
    sorted.forEach(function (row) { body.appendChild(row); });
    heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", order);
    status.textContent = "Sorted by " + th.textContent + ", " + (order === "ascending" ? "smallest" : "largest") + " first.";
  }

  heads.forEach(function (th, col) {
    if (!th.hasAttribute("data-sort")) { return; }
    var button = document.createElement("button");
    button.type = "button";
    button.className = "sort";
    while (th.firstChild) { button.appendChild(th.firstChild); }
    th.appendChild(button);
    button.addEventListener("click", function () { sortBy(col); });
  });

  var filter = document.getElementById("atlas-flagged");
  if (table.querySelector("tr.flagged")) {
    filter.closest(".atlas-controls").hidden = false;
    filter.addEventListener("change", function () {
      rows.forEach(function (row) { row.hidden = filter.checked && !row.classList.contains("flagged"); });
      status.textContent = filter.checked ? "Showing flagged units only." : "Showing every unit.";
    });
  }
}());
