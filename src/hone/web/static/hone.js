// hone view's scripts: draw (Chart.js curves, cytoscape.js graphs) and keep live pages fresh.
// Pages are complete without them; nothing here writes anywhere.
(function () {
  "use strict";

  // --- live pages: poll a cheap JSON stamp; when it changes, re-fetch the page and swap #live.
  function poll(url) {
    var last = null;
    var dot = document.createElement("span");
    dot.className = "live-dot"; dot.title = "live: updates as the run stores trajectories";
    var h1 = document.querySelector("h1"); if (h1) h1.appendChild(dot);
    function tick() {
      fetch(url, { cache: "no-store" }).then(function (r) { return r.json(); }).then(function (s) {
        var key = JSON.stringify(s);
        if (last !== null && key !== last) refresh();
        last = key;
        if (s.status && s.status !== "running") { dot.remove(); if (last !== null) refresh(); return; }
        setTimeout(tick, 1500);
      }).catch(function () { setTimeout(tick, 4000); });
    }
    tick();
  }
  function refresh() {
    fetch(location.href, { cache: "no-store" }).then(function (r) { return r.text(); }).then(function (html) {
      var doc = new DOMParser().parseFromString(html, "text/html");
      var fresh = doc.getElementById("live"), old = document.getElementById("live");
      if (fresh && old) { old.replaceWith(fresh); charts(); document.dispatchEvent(new Event("hone:refreshed")); }
    });
  }

  // --- loop curves
  var palette = ["#3056d3", "#1f8a4c", "#c23b3b", "#b7791f", "#7a3fb0", "#2b7bb9", "#d0488b", "#5b6b00"];
  function charts() {
    if (typeof Chart === "undefined") return;
    document.querySelectorAll("canvas[data-curves]").forEach(function (canvas) {
      if (canvas.dataset.drawn) return;
      canvas.dataset.drawn = "1";
      var c = JSON.parse(canvas.dataset.curves), sets = [];
      if (canvas.dataset.kind === "heldout") {
        sets.push({ label: "held-out", data: c.heldout.map(function (v) { return v === null ? null : 100 * v; }), borderWidth: 3 });
        Object.keys(c.levels).forEach(function (lv) {
          sets.push({ label: lv, data: c.levels[lv].map(function (v) { return v === null ? null : 100 * v; }), borderDash: [4, 3], borderWidth: 1.5 });
        });
      } else {
        Object.keys(c.monitors).forEach(function (m) { sets.push({ label: m, data: c.monitors[m], borderWidth: 1.5 }); });
      }
      sets.forEach(function (s, i) { s.borderColor = s.backgroundColor = palette[i % palette.length]; s.tension = 0.15; s.spanGaps = true; });
      new Chart(canvas, {
        type: "line",
        data: { labels: c.labels.map(function (x) { return "it " + x; }), datasets: sets },
        options: { animation: false, responsive: true, maintainAspectRatio: true,
          scales: canvas.dataset.kind === "heldout" ? { y: { min: 0, max: 100, title: { display: true, text: "% passed" } } } : {} }
      });
    });
  }

  // --- strategy graphs
  function graph() {
    var box = document.getElementById("graph");
    if (!box || typeof cytoscape === "undefined") return;
    var layout = box.dataset.layout === "breadthfirst"
      ? { name: "breadthfirst", directed: true, fit: true, padding: 30, spacingFactor: 1.15 }
      : { name: "preset", fit: true, padding: 30 };
    var cy = cytoscape({
      container: box,
      elements: JSON.parse(box.dataset.elements),
      layout: layout,
      wheelSensitivity: 0.3,
      minZoom: 0.2,
      style: [
        { selector: "node", style: { "label": "data(label)", "text-wrap": "wrap", "font-size": 11, "text-valign": "bottom",
          "text-margin-y": 4, "width": 24, "height": 24, "background-color": "#9aa3b5" } },
        { selector: "node.lane", style: { "background-color": "#f3f5f9", "background-opacity": 0.7, "border-width": 1,
          "border-style": "dashed", "border-color": "#c9cfdb", "text-valign": "top", "text-halign": "center",
          "font-size": 13, "font-weight": 600, "color": "#6b7385", "padding": 18, "shape": "round-rectangle" } },
        { selector: "node.ok", style: { "background-color": "#3056d3" } },
        { selector: "node.error", style: { "background-color": "#c23b3b" } },
        { selector: "node.chosen", style: { "border-width": 5, "border-color": "#1f8a4c", "width": 34, "height": 34 } },
        { selector: "node:selected", style: { "background-color": "#b7791f" } },
        { selector: "edge", style: { "width": 1.5, "line-color": "#c9cfdb", "target-arrow-color": "#c9cfdb",
          "target-arrow-shape": "triangle", "curve-style": "bezier" } }
      ]
    });
    window.honeGraph = cy;  // for the browser tests and the console
    var info = document.getElementById("node-info");
    cy.on("tap", "node", function (ev) {
      if (ev.target.hasClass("lane")) return;
      var d = ev.target.data(), rows = [];
      rows.push("<h3>" + esc(d.op || "attempt") + (ev.target.hasClass("chosen") ? " <span class='badge ok'>chosen</span>" : "") + "</h3>");
      if (d.lane) rows.push("<p>" + esc(d.lane) + "</p>");
      [["public score", d.public_score], ["peer score", d.peer_score], ["votes", d.support]].forEach(function (kv) {
        if (kv[1] !== null && kv[1] !== undefined) rows.push("<p>" + kv[0] + ": <b>" + Number(kv[1]).toFixed(3) + "</b></p>");
      });
      rows.push("<p>answer: <b>" + esc(d.answer || "(none)") + "</b></p>");
      rows.push("<pre>" + esc(JSON.stringify(d.meta, null, 2)) + "</pre>");
      rows.push("<p><a id='node-link' href='/t?id=" + encodeURIComponent(d.id) + "'>open transcript ›</a></p>");
      info.innerHTML = rows.join("");
    });
  }
  function esc(s) { return String(s).replace(/[&<>"']/g, function (c) { return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]; }); }

  document.addEventListener("DOMContentLoaded", function () {
    charts(); graph();
    var url = document.body.dataset.poll; if (url) poll(url);
  });
})();
