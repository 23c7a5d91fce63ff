// The gallery's pager, filters and before/after views over DEBLURD.items (added by the data scripts above).
(function () {
  "use strict";
  var PER_PAGE = 48;
  var SEVERITIES = DEBLURD.severities;
  var MISSING = "not in this folder (removed by retention, or not copied yet)";
  var root = DEBLURD.root;
  var items = DEBLURD.items.slice().sort(function (a, b) { return b.e - a.e || b.i - a.i; });
  var main = document.getElementById("results");
  var controls = {kind: document.getElementById("kind"), view: document.getElementById("view"),
                  map: document.getElementById("map"),
                  sev: document.querySelectorAll("#severity input")};
  var state = readHash();

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function readHash() {
    var s = {page: 1, kind: "", sev: SEVERITIES.slice(), view: "slider", map: false};
    location.hash.replace(/^#/, "").split("&").forEach(function (part) {
      var kv = part.split("="), v = decodeURIComponent(kv[1] || "");
      if (kv[0] === "page") { s.page = parseInt(v, 10) || 1; }
      if (kv[0] === "kind") { s.kind = v; }
      if (kv[0] === "sev") { s.sev = v ? v.split(",") : []; }
      if (kv[0] === "view") { s.view = v === "side" ? "side" : "slider"; }
      if (kv[0] === "map") { s.map = v === "1"; }
    });
    return s;
  }

  function writeHash() {
    var hash = "#page=" + state.page + "&kind=" + encodeURIComponent(state.kind) + "&sev=" + state.sev.join(",") +
      "&view=" + state.view + "&map=" + (state.map ? 1 : 0);
    try { history.replaceState(null, "", hash); } catch (e) { /* some browsers refuse on file:// */ }
  }

  function image(href, cls) {
    var img = el("img", cls);
    img.loading = "lazy";
    img.decoding = "async";
    img.alt = cls;
    img.onload = function () { img.setAttribute("data-state", "loaded"); };
    img.onerror = function () {
      var note = el("div", "missing " + cls, cls + " image " + MISSING);
      note.setAttribute("data-state", "missing");
      if (img.parentNode) { img.parentNode.replaceChild(note, img); }
    };
    img.src = root + href;
    return img;
  }

  function template(edges, count) {
    if (!edges || edges.length !== count + 1) { return "repeat(" + count + ", 1fr)"; }
    var parts = [];
    for (var j = 0; j < count; j++) { parts.push(((edges[j + 1] - edges[j]) * 100).toFixed(3) + "%"); }
    return parts.join(" ");
  }

  function blurMap(item) {
    var map = el("div", "map");
    var rows = item.m, cols = rows[0].length;
    map.style.gridTemplateColumns = template(item.x, cols);
    map.style.gridTemplateRows = template(item.y, rows.length);
    rows.forEach(function (row) {
      for (var j = 0; j < cols; j++) { map.appendChild(el("i", "cell-" + row.charAt(j))); }
    });
    return map;
  }

  function percent(v) { return Math.round(v * 100) + "%"; }

  function card(item) {
    var node = el("article", "card kind-" + item.k + " sev-" + item.s);
    node.setAttribute("data-id", item.i);
    var compare = el("div", "compare");
    var base = item.a || item.r;
    compare.appendChild(base ? image(base, item.a ? "input" : "restored") : el("div", "missing", "no image kept"));
    if (item.a && item.r) {
      compare.appendChild(image(item.r, "restored"));
      compare.appendChild(el("div", "divider"));
      compare.appendChild(el("span", "tag", "input"));
      compare.appendChild(el("span", "tag right", "restored"));
    } else {
      compare.appendChild(el("span", "tag", item.r ? "restored (input not kept)" : "sharp: passed through unchanged"));
    }
    if (item.m && item.m.length) { compare.appendChild(blurMap(item)); }
    node.appendChild(compare);
    if (item.a && item.r) {
      var cut = el("input", "cut");
      cut.type = "range"; cut.min = 0; cut.max = 100; cut.value = 50;
      cut.setAttribute("aria-label", "input | restored");
      cut.oninput = function () { compare.style.setProperty("--cut", cut.value + "%"); };
      node.appendChild(cut);
    }
    var info = el("div", "info");
    var line = el("div", "line");
    line.appendChild(el("span", "badge " + item.s, item.s));
    line.appendChild(el("span", "kind", item.k));
    line.appendChild(el("span", "time", item.t));
    line.appendChild(el("span", "dim", "#" + item.i));
    info.appendChild(line);
    var facts = el("div", "line dim");
    if (item.p) {
      facts.appendChild(el("span", "", SEVERITIES.map(function (s, j) { return s + " " + percent(item.p[j]); })
        .join(" · ")));
    }
    if (item.l !== undefined) { facts.appendChild(el("span", "", "lens " + item.l.toFixed(2) + " dpt")); }
    if (item.c !== undefined) { facts.appendChild(el("span", "", item.c.toFixed(1) + " °C")); }
    info.appendChild(facts);
    var links = el("div", "line");
    if (item.n) { links.appendChild(el("span", "dim", item.n)); }
    [["input", item.a], ["restored", item.r]].forEach(function (pair) {
      if (!pair[1]) { return; }
      var a = el("a", "", pair[0]);
      a.href = root + pair[1];
      links.appendChild(a);
    });
    info.appendChild(links);
    node.appendChild(info);
    return node;
  }

  function pager(box, page, pages, total) {
    box.textContent = "";
    function button(label, target) {
      var b = el("button", "", label);
      b.type = "button";
      b.disabled = target < 1 || target > pages || target === page;
      b.onclick = function () { go(target); };
      box.appendChild(b);
    }
    button("« newest", 1);
    button("‹ newer", page - 1);
    var input = el("input");
    input.type = "number"; input.min = 1; input.max = pages; input.value = page;
    input.setAttribute("aria-label", "page");
    input.onchange = function () { go(parseInt(input.value, 10) || 1); };
    box.appendChild(el("span", "", "page"));
    box.appendChild(input);
    box.appendChild(el("span", "", "of " + pages));
    button("older ›", page + 1);
    button("oldest »", pages);
    var first = total ? (page - 1) * PER_PAGE + 1 : 0;
    box.appendChild(el("span", "dim", "results " + first + "–" + Math.min(page * PER_PAGE, total) + " of " + total));
  }

  function go(page) {
    state.page = page;
    render();
    window.scrollTo(0, 0);
  }

  function render() {
    var shown = items.filter(function (item) {
      return (!state.kind || item.k === state.kind) && state.sev.indexOf(item.s) >= 0;
    });
    var pages = Math.max(1, Math.ceil(shown.length / PER_PAGE));
    state.page = Math.min(Math.max(1, state.page), pages);
    main.textContent = "";
    shown.slice((state.page - 1) * PER_PAGE, state.page * PER_PAGE).forEach(function (item) {
      main.appendChild(card(item));
    });
    if (!shown.length) {
      var option = controls.kind.options[controls.kind.selectedIndex];
      var ofKind = !state.kind || items.some(function (item) { return item.k === state.kind; });
      main.appendChild(el("p", "empty", !items.length ? "No results yet." : ofKind ?
        "No result matches these filters." : "No result of this kind (" + option.textContent + ") here yet."));
    }
    pager(document.getElementById("pager-top"), state.page, pages, shown.length);
    pager(document.getElementById("pager-bottom"), state.page, pages, shown.length);
    document.body.classList.toggle("side", state.view === "side");
    document.body.classList.toggle("show-map", state.map);
    document.body.setAttribute("data-shown", shown.length);
    document.body.setAttribute("data-kind", state.kind);
    writeHash();
  }

  controls.kind.value = state.kind;
  if (controls.kind.value !== state.kind) { state.kind = controls.kind.value = ""; }  // a kind not offered: all
  controls.view.value = state.view;
  controls.map.checked = state.map;
  Array.prototype.forEach.call(controls.sev, function (box) { box.checked = state.sev.indexOf(box.value) >= 0; });
  controls.kind.onchange = function () { state.kind = controls.kind.value; go(1); };
  controls.view.onchange = function () { state.view = controls.view.value; render(); };
  controls.map.onchange = function () { state.map = controls.map.checked; render(); };
  Array.prototype.forEach.call(controls.sev, function (box) {
    box.onchange = function () {
      state.sev = Array.prototype.filter.call(controls.sev, function (b) { return b.checked; })
        .map(function (b) { return b.value; });
      go(1);
    };
  });
  document.addEventListener("keydown", function (event) {
    if (event.target.tagName === "INPUT" || event.target.tagName === "SELECT") { return; }
    if (event.key === "ArrowLeft") { go(state.page - 1); }
    if (event.key === "ArrowRight") { go(state.page + 1); }
  });
  render();
}());
