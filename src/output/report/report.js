// psexec-sensor report page. Plain DOM and SVG, no framework, nothing fetched.
// Every value from the run goes into the page as text (textContent, setAttribute), never as markup:
// alert fields come off the wire.
(function () {
  "use strict";

  var errors = document.getElementById("errors");
  function showError(text) {
    errors.hidden = false;
    errors.appendChild(document.createTextNode(text + "\n"));
  }
  window.onerror = function (msg, src, line, col) {
    showError("script error: " + msg + " (" + line + ":" + col + ")");
  };
  window.addEventListener("unhandledrejection", function (e) {
    showError("script error: " + e.reason);
  });

  var SVGNS = "http://www.w3.org/2000/svg";
  var SEVERITIES = ["critical", "high", "medium", "low", "info"];
  var SEV_RANK = { critical: 5, high: 4, medium: 3, low: 2, info: 1, unreadable: 0 };
  var SEV_COLOR = {
    critical: "#7f0019", high: "#d7263d", medium: "#f08a24", low: "#e6c229",
    info: "#8a94a6", unreadable: "#5b6b8c"
  };
  var PHASES = [
    ["connect", "admin share connect", "#8a94a6"],
    ["upload", "upload", "#2f6fdb"],
    ["create", "service/task create", "#7b2cbf"],
    ["start", "service start", "#1b9e5a"],
    ["delete", "service delete", "#222"],
    ["pipe", "pipe open", "#12a4b6"],
    ["auth", "session setup", "#b5651d"]
  ];
  var PHASE_COLOR = {};
  PHASES.forEach(function (p) { PHASE_COLOR[p[0]] = p[2]; });

  // Options from the URL fragment: #all (every table row on one page), #open=N (show alert N).
  var OPTS = {};
  location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
    if (!kv) return;
    var i = kv.indexOf("=");
    if (i < 0) OPTS[decodeURIComponent(kv)] = true;
    else OPTS[decodeURIComponent(kv.slice(0, i))] = decodeURIComponent(kv.slice(i + 1));
  });
  var PAGE_SIZE = OPTS.all ? Infinity : 50;
  var TIMELINE_ROWS = OPTS.all ? Infinity : 25;
  var MAX_GRAPH_HOSTS = 120;

  // ---- small DOM helpers --------------------------------------------------------------------
  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    setAttrs(e, attrs);
    append(e, children);
    return e;
  }
  function svg(tag, attrs, children) {
    var e = document.createElementNS(SVGNS, tag);
    setAttrs(e, attrs);
    append(e, children);
    return e;
  }
  function setAttrs(e, attrs) {
    if (!attrs) return;
    Object.keys(attrs).forEach(function (k) {
      var v = attrs[k];
      if (v === undefined || v === null || v === false) return;
      if (k === "text") e.textContent = String(v);
      else if (k === "onclick") e.addEventListener("click", v);
      else e.setAttribute(k, String(v));
    });
  }
  function append(e, children) {
    if (children === undefined || children === null) return;
    if (!Array.isArray(children)) children = [children];
    children.forEach(function (c) {
      if (c === undefined || c === null || c === false) return;
      e.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
    });
  }
  function clear(e) {
    while (e.firstChild) e.removeChild(e.firstChild);
  }
  function fmtTs(ts) {
    if (ts === undefined || ts === null || !isFinite(ts)) return "";
    var d = new Date(ts * 1000);
    if (isNaN(d.getTime())) return String(ts);
    return d.toISOString().replace("T", " ").replace("Z", "");
  }
  function fmtBytes(n) {
    if (n === undefined || n === null) return "";
    if (n < 1024) return n + " B";
    if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
    return (n / 1048576).toFixed(1) + " MiB";
  }
  function sevBadge(sev) {
    return el("span", { "class": "sev sev-" + sev, text: sev });
  }
  function who(a) {
    if (!a.user) return "";
    return a.domain ? a.domain + "\\" + a.user : a.user;
  }

  // ---- the data -----------------------------------------------------------------------------
  var dataElement = document.getElementById("report-data");
  var DATA = JSON.parse(dataElement.textContent);
  // Parsed once: the text (megabytes on a large run) need not stay in the document as well.
  dataElement.textContent = "";
  var ALERTS = DATA.alerts;
  var EVENTS = DATA.events;
  ALERTS.forEach(function (a, i) {
    a.index = i;
    a.sev = a.kind === "visibility" ? "unreadable" : (a.severity || "info");
    a.what = a.technique || a.signal || a.visibility || a.kind;
    a.who = who(a);
    a.end = Math.max(a.ts_end || a.ts, a.ts);
    a.object = a.service_name || a.task_path || (a.upload ? a.upload.name : "") || "";
  });

  // Which step of the technique an event (or, without events, an evidence line) shows.
  function phaseOf(log, ev) {
    if (log === "smb_mapping") return "connect";
    if (log === "smb_auth" || log === "smb_visibility") return "auth";
    if (log === "smb_files") {
      var act = ev && ev.action || "";
      if (act.indexOf("PIPE") >= 0) return "pipe";
      if (act.indexOf("WRITE") >= 0) return "upload";
      return null;
    }
    if (log === "dce_rpc") {
      var op = ev && ev.operation || "";
      if (/Delete/.test(op)) return "delete";
      if (/Start/.test(op)) return "start";
      if (/Create|Register|JobAdd|ChangeServiceConfig/.test(op)) return "create";
      return ev ? null : "create";
    }
    return null;
  }
  function marksOf(a) {
    if (a.marks) return a.marks;
    var marks = [];
    if (a.events.length) {
      a.events.forEach(function (i) {
        var ev = EVENTS[i];
        var p = phaseOf(ev.log, ev);
        if (p) marks.push({ ts: ev.ts, phase: p });
      });
    } else {
      (a.evidence || []).forEach(function (e) {
        var p = phaseOf(e.log, null);
        if (p) marks.push({ ts: e.ts, phase: p });
      });
    }
    a.marks = marks;
    return marks;
  }

  // ---- header -------------------------------------------------------------------------------
  function header() {
    var inputs = document.getElementById("inputs");
    // File names only (the full paths in the tooltip): the header stays one line.
    var names = DATA.inputs.map(function (p) { return p.replace(/\/+$/, "").split("/").pop(); });
    inputs.textContent = "from " + (names.length ? names.join(", ") : "(no inputs)") +
      " · psexec-sensor " + DATA.sensor_version;
    inputs.setAttribute("title", DATA.inputs.join("\n"));
    var counts = { technique: 0, signal: 0, visibility: 0 };
    var hosts = {};
    var t0 = Infinity, t1 = -Infinity;
    ALERTS.forEach(function (a) {
      counts[a.kind] = (counts[a.kind] || 0) + 1;
      if (a.src_ip) hosts[a.src_ip] = 1;
      if (a.dst_ip) hosts[a.dst_ip] = 1;
      t0 = Math.min(t0, a.ts);
      t1 = Math.max(t1, a.end);
    });
    var chips = document.getElementById("chips");
    function chip(n, label) {
      chips.appendChild(el("span", { "class": "chip" }, [el("b", { text: n }), label]));
    }
    chip(counts.technique, "attack instances");
    chip(counts.signal, "signals");
    chip(counts.visibility, "unreadable sessions");
    chip(Object.keys(hosts).length, "hosts");
    if (isFinite(t0)) chip("", fmtTs(t0) + " → " + fmtTs(t1) + " UTC");
    var dropped = Object.keys(DATA.dropped);
    if (dropped.length) chip("", "some items left out: see Anomalies");
  }

  // ---- tables: filter, sort, paginate -------------------------------------------------------
  // columns: [{key, label, num, render(row) -> node|string, value(row) -> sortable}]
  function makeTable(container, columns, rows, opts) {
    opts = opts || {};
    var state = { filter: "", sortKey: opts.sortKey || null, desc: !!opts.desc, page: 0 };
    var input = el("input", { type: "search", placeholder: "filter (words, all must match)" });
    var info = el("span", { "class": "muted" });
    var prev = el("button", { text: "‹ prev" });
    var next = el("button", { text: "next ›" });
    var body = el("tbody");
    var heads = columns.map(function (c) {
      var th = el("th", { "class": "sortable", text: c.label, "data-key": c.key });
      th.addEventListener("click", function () {
        if (state.sortKey === c.key) state.desc = !state.desc;
        else { state.sortKey = c.key; state.desc = !!c.num; }
        state.page = 0;
        draw();
      });
      return th;
    });
    var tools = el("div", { "class": "table-tools" }, [input, prev, next, info]);
    var table = el("table", { "class": opts.tableClass || "" }, [el("thead", null, el("tr", null, heads)), body]);
    container.appendChild(tools);
    container.appendChild(el("div", { "class": "table-wrap" }, table));
    var texts = rows.map(function (r) {
      return columns.map(function (c) { return String(c.value ? c.value(r) : (r[c.key] === undefined ? "" : r[c.key])); })
        .join(" \u0001 ").toLowerCase();
    });
    input.addEventListener("input", function () { state.filter = input.value; state.page = 0; draw(); });
    prev.addEventListener("click", function () { state.page--; draw(); });
    next.addEventListener("click", function () { state.page++; draw(); });
    function value(c, r) { return c.value ? c.value(r) : r[c.key]; }
    function draw() {
      var words = state.filter.toLowerCase().split(/\s+/).filter(Boolean);
      var idx = [];
      for (var i = 0; i < rows.length; i++) {
        var t = texts[i], ok = true;
        for (var w = 0; w < words.length; w++) if (t.indexOf(words[w]) < 0) { ok = false; break; }
        if (ok) idx.push(i);
      }
      if (state.sortKey) {
        var col = columns.filter(function (c) { return c.key === state.sortKey; })[0];
        idx.sort(function (x, y) {
          var a = value(col, rows[x]), b = value(col, rows[y]);
          if (a === undefined || a === null) a = col.num ? -Infinity : "";
          if (b === undefined || b === null) b = col.num ? -Infinity : "";
          var r = col.num ? a - b : String(a).localeCompare(String(b));
          return (state.desc ? -r : r) || x - y;
        });
      }
      heads.forEach(function (th) {
        th.classList.toggle("asc", th.getAttribute("data-key") === state.sortKey && !state.desc);
        th.classList.toggle("desc", th.getAttribute("data-key") === state.sortKey && state.desc);
      });
      var pages = Math.max(1, Math.ceil(idx.length / PAGE_SIZE));
      state.page = Math.min(Math.max(0, state.page), pages - 1);
      var from = PAGE_SIZE === Infinity ? 0 : state.page * PAGE_SIZE;
      var to = Math.min(idx.length, from + PAGE_SIZE);
      clear(body);
      var frag = document.createDocumentFragment();
      for (var k = from; k < to; k++) {
        var row = rows[idx[k]];
        var tr = el("tr", opts.rowAttrs ? opts.rowAttrs(row) : null);
        columns.forEach(function (c) {
          var v = c.render ? c.render(row) : value(c, row);
          tr.appendChild(el("td", { "class": (c.num ? "num" : "") + (c.wrap ? " wrap" : "") }, v));
        });
        if (opts.onRow) {
          tr.classList.add("clickable");
          tr.addEventListener("click", opts.onRow.bind(null, row));
        }
        frag.appendChild(tr);
      }
      body.appendChild(frag);
      info.textContent = idx.length === 0 ? "no rows" :
        "rows " + (from + 1) + "–" + to + " of " + idx.length +
        (idx.length < rows.length ? " (filtered from " + rows.length + ")" : "");
      prev.disabled = state.page === 0;
      next.disabled = state.page >= pages - 1;
    }
    draw();
    return {
      setFilter: function (text) { input.value = text; state.filter = text; state.page = 0; draw(); }
    };
  }

  // ---- alert details ------------------------------------------------------------------------
  var selectedBar = null;
  function showAlert(a) {
    var box = document.getElementById("detail");
    clear(box);
    box.setAttribute("data-alert", a.index);
    box.appendChild(el("h3", null, [sevBadge(a.sev), " ", a.what, " ",
      a.src_ip || "?", " → ", a.dst_ip || (a.targets && a.targets.length ? a.targets.length + " targets" : "?")]));
    var fields = [
      ["time", fmtTs(a.ts) + (a.ts_end && a.ts_end !== a.ts ? " → " + fmtTs(a.ts_end) : "") + " UTC"],
      ["id", a.id], ["reason", a.reason], ["user", a.who], ["workstation", a.workstation],
      ["service", a.service_name], ["display name", a.display_name], ["binary path", a.binary_path],
      ["start type", a.start_type], ["task", a.task_path], ["command", a.command],
      ["share", a.share], ["pipes", (a.pipes || []).join(", ")],
      ["tool", a.tool ? a.tool + (a.tool_reason ? " (" + a.tool_reason + ")" : "") : ""],
      ["count", a.count > 1 ? a.count : ""],
      ["outcome", [a.started ? "started" : "", a.deleted ? "deleted" : "", a.failed ? "every create failed" : ""]
        .filter(Boolean).join(", ")],
      ["basis", a.basis ? a.basis + (a.decrypted ? " (decrypted)" : "") : ""],
      ["confidence", a.confidence], ["ATT&CK", (a.attack || []).join(", ")],
      ["session", a.session_id !== undefined ? "0x" + a.session_id.toString(16) : ""],
      ["dialect / cipher", [a.dialect, a.cipher].filter(Boolean).join(" / ")],
      ["connection", a.uid ? el("span", { "class": "uid", text: a.uid }) : ""],
      ["targets", (a.targets || []).join(", ")],
      ["suppressed by", a.suppressed_by]
    ];
    var dl = el("dl");
    fields.forEach(function (f) {
      if (f[1] === undefined || f[1] === null || f[1] === "") return;
      dl.appendChild(el("dt", { text: f[0] }));
      dl.appendChild(el("dd", null, f[1]));
    });
    box.appendChild(dl);
    var uploads = (a.uploads || []).concat(a.upload ? [a.upload] : []);
    if (uploads.length) {
      box.appendChild(el("h4", { text: "Files written" }));
      box.appendChild(simpleTable(["share", "name", "size", "PE", "SHA-256", "service binary"],
        uploads.map(function (u) {
          return [u.share, u.name, fmtBytes(u.size), u.pe ? "yes" : "no",
            el("code", { "class": "sha256", text: u.sha256 || "" }), u.referenced ? "yes" : ""];
        })));
    }
    if (a.calls && a.calls.length > 1) {
      box.appendChild(el("h4", { text: "Calls folded into this instance" }));
      box.appendChild(simpleTable(["time", "service", "binary path / task", "status"],
        a.calls.map(function (c) {
          return [fmtTs(c.ts), c.service_name || "", c.binary_path || c.task_path || "", c.status];
        })));
    }
    if (a.events.length) {
      box.appendChild(el("h4", { text: "Events behind it (" + a.events.length + ")" }));
      box.appendChild(simpleTable(["time", "log", "uid", "what"], a.events.map(function (i) {
        var ev = EVENTS[i];
        return [fmtTs(ev.ts), ev.log, el("span", { "class": "uid", text: ev.uid || "" }), eventWhat(ev)];
      }), "events"));
    }
    if (a.evidence && a.evidence.length) {
      box.appendChild(el("h4", { text: "Evidence (" + a.evidence.length + ")" }));
      box.appendChild(simpleTable(["time", "log", "uid", "summary"], a.evidence.map(function (e) {
        return [fmtTs(e.ts), e.log, el("span", { "class": "uid", text: e.uid }), e.summary];
      }), "evidence"));
    }
    if (selectedBar) selectedBar.classList.remove("selected");
    selectedBar = document.querySelector('[data-bar="' + a.index + '"]');
    if (selectedBar) selectedBar.classList.add("selected");
  }
  function eventWhat(ev) {
    var parts = [];
    function add(label, v) { if (v !== undefined && v !== null && v !== "") parts.push(label + v); }
    add("", ev.action);
    add("", ev.operation ? (ev.endpoint ? ev.endpoint + "." : "") + ev.operation : undefined);
    add("path ", ev.path);
    add("name ", ev.name);
    add("pipe ", ev.named_pipe);
    add("service ", ev.service_name);
    add("binary ", ev.binary_path);
    add("task ", ev.task_path);
    add("command ", ev.command);
    add("bytes ", ev.bytes_written !== undefined ? ev.bytes_written : ev.size);
    add("", ev.to_server === undefined ? undefined : (ev.to_server ? "client→server" : "server→client"));
    add("wire bytes ", ev.wire_size);
    add("plaintext bytes ", ev.original_size);
    if (ev.pe) parts.push("PE");
    add("sha256 ", ev.sha256);
    add("user ", ev.user ? (ev.domain ? ev.domain + "\\" + ev.user : ev.user) : undefined);
    add("auth ", ev.auth);
    add("", ev.kind);
    add("status ", ev.status);
    return parts.join(" · ");
  }
  function simpleTable(heads, rows, cls) {
    return el("div", { "class": "table-wrap" }, el("table", { "class": cls || "" }, [
      el("thead", null, el("tr", null, heads.map(function (h) { return el("th", { text: h }); }))),
      el("tbody", null, rows.map(function (r) {
        return el("tr", null, r.map(function (c, i) {
          return el("td", { "class": heads[i] === "time" || heads[i] === "log" ? "nowrap" : "wrap" }, c);
        }));
      }))
    ]));
  }
  function openAlert(a) {
    showAlert(a);
    var section = document.getElementById("detail-section");
    var r = section.getBoundingClientRect();
    if (r.top > window.innerHeight || r.bottom < 0) section.scrollIntoView();
  }

  // ---- graph: hosts in columns by how far down a chain of moves they are ---------------------
  var alertsTable = null;
  function graph() {
    var box = document.getElementById("graph");
    var edges = {}, hosts = {};
    function host(ip) {
      return hosts[ip] || (hosts[ip] = { ip: ip, out: 0, inn: 0, sev: 0, weight: 0 });
    }
    function edge(a, src, dst) {
      var key = src + "\u0000" + dst;
      var e = edges[key] || (edges[key] = { src: src, dst: dst, technique: 0, signal: 0, visibility: 0, sev: 0, tools: {} });
      e[a.kind]++;
      e.sev = Math.max(e.sev, SEV_RANK[a.sev]);
      if (a.tool && a.tool !== "unknown") e.tools[a.tool] = 1;
      var s = host(src), d = host(dst);
      var w = a.kind === "technique" ? 3 : 1;
      s.out += w; d.inn += w; s.weight += w; d.weight += w;
      d.sev = Math.max(d.sev, SEV_RANK[a.sev]);
    }
    ALERTS.forEach(function (a) {
      if (!a.src_ip) return;
      if (a.dst_ip) edge(a, a.src_ip, a.dst_ip);
      else (a.targets || []).forEach(function (t) { edge(a, a.src_ip, t); });
    });
    var all = Object.keys(hosts).map(function (k) { return hosts[k]; });
    all.sort(function (x, y) { return y.weight - x.weight || (x.ip < y.ip ? -1 : 1); });
    var shown = all.slice(0, MAX_GRAPH_HOSTS);
    var keep = {};
    shown.forEach(function (h) { keep[h.ip] = h; });
    var list = Object.keys(edges).map(function (k) { return edges[k]; })
      .filter(function (e) { return keep[e.src] && keep[e.dst] && e.src !== e.dst; });
    // Columns by hops from where the movement started: breadth-first from hosts nobody attacked
    // (or, in a cycle, from the most active host), so cycles cannot stretch the picture.
    var next = {}, indeg = {};
    list.forEach(function (e) {
      (next[e.src] = next[e.src] || []).push(e.dst);
      indeg[e.dst] = (indeg[e.dst] || 0) + 1;
    });
    shown.forEach(function (h) { h.depth = -1; });
    function spread(roots) {
      var queue = roots.slice();
      roots.forEach(function (h) { h.depth = 0; });
      for (var q = 0; q < queue.length; q++) {
        (next[queue[q].ip] || []).forEach(function (ip) {
          var d = keep[ip];
          if (d.depth < 0) { d.depth = queue[q].depth + 1; queue.push(d); }
        });
      }
    }
    spread(shown.filter(function (h) { return !indeg[h.ip]; }));
    shown.forEach(function (h) { if (h.depth < 0) spread([h]); });
    var cols = [];
    shown.forEach(function (h) { (cols[h.depth] = cols[h.depth] || []).push(h); });
    cols = cols.filter(Boolean);
    var rowH = 26, colW = 230, padX = 150, padY = 24;
    var tallest = Math.max.apply(null, cols.map(function (c) { return c.length; }).concat([1]));
    var width, height;
    // Many hosts, or a column too tall to read: a circle, sources first, instead of columns.
    var circle = shown.length > 60 || tallest > 30;
    if (circle) {
      var ring = shown.slice().sort(function (x, y) { return x.depth - y.depth || y.weight - x.weight; });
      var R = Math.max(160, ring.length * 15 / (2 * Math.PI));
      width = Math.max(box.clientWidth || 900, 2 * R + 2 * padX);
      height = 2 * R + 2 * padY + 20;
      ring.forEach(function (h, i) {
        var a = -Math.PI / 2 + 2 * Math.PI * i / ring.length;
        h.x = width / 2 + R * Math.cos(a);
        h.y = height / 2 + R * Math.sin(a);
        h.left = Math.cos(a) < 0;
      });
    } else {
      width = Math.max(box.clientWidth || 900, padX * 2 + (cols.length - 1) * colW);
      height = padY * 2 + tallest * rowH;
      cols.forEach(function (c, ci) {
        // Order each column by where its hosts' sources sit, so edges cross less.
        if (ci > 0) {
          c.forEach(function (h) {
            var ys = list.filter(function (e) { return e.dst === h.ip && keep[e.src].y !== undefined; })
              .map(function (e) { return keep[e.src].y; });
            h.bary = ys.length ? ys.reduce(function (s, y) { return s + y; }, 0) / ys.length : 1e9;
          });
          c.sort(function (x, y) { return x.bary - y.bary || y.weight - x.weight; });
        }
        var top = padY + (tallest - c.length) * rowH / 2;
        c.forEach(function (h, i) {
          h.x = padX + ci * (cols.length > 1 ? (width - 2 * padX) / (cols.length - 1) : 0);
          h.y = top + i * rowH + rowH / 2;
          h.left = !!h.out;
        });
      });
    }
    var root = svg("svg", { viewBox: "0 0 " + width + " " + height, height: height, id: "graph-svg" });
    var maxCount = Math.max.apply(null, list.map(function (e) { return e.technique + e.signal + e.visibility; }).concat([1]));
    list.forEach(function (e) {
      var s = keep[e.src], d = keep[e.dst];
      var total = e.technique + e.signal + e.visibility;
      var sev = e.technique || e.signal ? SEVERITIES[5 - e.sev] || "info" : "unreadable";
      var path;
      if (circle) {
        // Through a point pulled towards the centre: chords of one circle.
        var cx = (s.x + d.x) / 4 + width / 4, cy = (s.y + d.y) / 4 + height / 4;
        path = "M" + s.x + "," + s.y + " Q" + cx + "," + cy + " " + d.x + "," + d.y;
      } else if (d.x > s.x) {
        var dx = Math.max(40, (d.x - s.x) / 2);
        path = "M" + s.x + "," + s.y + " C" + (s.x + dx) + "," + s.y + " " + (d.x - dx) + "," + d.y + " " + d.x + "," + d.y;
      } else {
        path = "M" + s.x + "," + s.y + " C" + (s.x + 120) + "," + (s.y - 40) + " " + (d.x + 120) + "," + (d.y + 40) + " " + d.x + "," + d.y;
      }
      var tools = Object.keys(e.tools);
      root.appendChild(svg("path", {
        "class": "edge", d: path, fill: "none", stroke: SEV_COLOR[sev], opacity: circle ? 0.35 : 0.75,
        "stroke-width": 1.5 + 6 * Math.log(1 + total) / Math.log(1 + maxCount),
        "stroke-dasharray": e.technique ? null : (e.signal ? "2,3" : "6,4"),
        "data-src": e.src, "data-dst": e.dst,
        onclick: function () { if (alertsTable) alertsTable.setFilter(e.src + " " + e.dst); }
      }, svg("title", {
        text: e.src + " → " + e.dst + ": " + e.technique + " attack(s), " + e.signal + " signal(s), " +
          e.visibility + " unreadable session(s)" + (tools.length ? "; " + tools.join(", ") : "")
      })));
    });
    shown.forEach(function (h) {
      var r = circle ? 3 + Math.min(6, Math.sqrt(h.weight)) : 5 + Math.min(12, Math.sqrt(h.weight) * 1.6);
      var sev = h.sev ? SEVERITIES[5 - h.sev] || "info" : (h.out ? "info" : "unreadable");
      var g = svg("g", {
        "class": "node", "data-host": h.ip,
        onclick: function () { if (alertsTable) alertsTable.setFilter(h.ip); }
      }, [
        svg("circle", { cx: h.x, cy: h.y, r: r, fill: h.inn ? SEV_COLOR[sev] : "#fff", stroke: h.out ? "#1d2330" : SEV_COLOR[sev], "stroke-width": h.out ? 2.5 : 1 }),
        // In columns sources are labelled on their left (edges leave rightwards), targets on their
        // right; on a circle, labels point outwards.
        svg("text", {
          "class": "host-label", x: h.left ? h.x - r - 4 : h.x + r + 4, y: h.y + 4,
          "text-anchor": h.left ? "end" : "start", text: h.ip
        }),
        svg("title", { text: h.ip + ": " + h.out + " out, " + h.inn + " in (weighted: attacks count 3)" })
      ]);
      root.appendChild(g);
    });
    if (!shown.length) {
      root.setAttribute("height", 40);
      root.setAttribute("viewBox", "0 0 900 40");
      root.appendChild(svg("text", { x: 20, y: 24, text: "No host-to-host alerts in this run." }));
    }
    box.appendChild(root);
    if (all.length > shown.length) {
      box.appendChild(el("p", { "class": "muted", text: (all.length - shown.length) + " less active hosts not drawn (the tables list them)." }));
    }
    var legend = document.getElementById("graph-legend");
    SEVERITIES.concat(["unreadable"]).forEach(function (s) {
      legend.appendChild(el("span", { style: "--c:" + SEV_COLOR[s], text: s === "unreadable" ? "unreadable (encrypted) session" : s }));
    });
    legend.appendChild(el("span", { text: "solid: attack · dotted: signal · dashed: encrypted · ring: source host" }));
  }

  // ---- timeline: one row per source host, bars per alert -------------------------------------
  function timeline() {
    var box = document.getElementById("timeline");
    var rows = {}, order = [];
    var t0 = Infinity, t1 = -Infinity;
    ALERTS.forEach(function (a) {
      if (!a.src_ip) return;
      if (!rows[a.src_ip]) { rows[a.src_ip] = { ip: a.src_ip, alerts: [], first: a.ts }; order.push(rows[a.src_ip]); }
      var r = rows[a.src_ip];
      r.alerts.push(a);
      r.first = Math.min(r.first, a.ts);
      t0 = Math.min(t0, a.ts);
      t1 = Math.max(t1, a.end);
    });
    order.sort(function (x, y) { return x.first - y.first || (x.ip < y.ip ? -1 : 1); });
    if (!order.length) {
      box.appendChild(el("p", { "class": "muted", text: "No alerts with a source host." }));
      return;
    }
    var span = Math.max(1, t1 - t0);
    var full = [t0 - span * 0.02, t1 + span * 0.02];
    var view = full.slice();
    var page = 0, pages = Math.ceil(order.length / TIMELINE_ROWS);
    var labelW = 130, rowH = 22, axisH = 22, width = Math.max(600, box.clientWidth || 1200);
    var ctl = document.getElementById("timeline-controls");
    var zin = el("button", { text: "zoom in" }), zout = el("button", { text: "zoom out" });
    var reset = el("button", { text: "reset" });
    var prev = el("button", { text: "‹ hosts" }), next = el("button", { text: "hosts ›" });
    var info = el("span", { "class": "muted" });
    append(ctl, [zin, zout, reset, prev, next, info]);
    var root = svg("svg", { id: "timeline-svg" });
    box.appendChild(root);
    function x(t) { return labelW + (t - view[0]) / (view[1] - view[0]) * (width - labelW - 10); }
    function zoom(f, center) {
      var c = center === undefined ? (view[0] + view[1]) / 2 : center;
      var w = Math.max(0.001, (view[1] - view[0]) * f);
      view = [c - (c - view[0]) * f, c - (c - view[0]) * f + w];
      draw();
    }
    zin.addEventListener("click", function () { zoom(0.5); });
    zout.addEventListener("click", function () { zoom(2); });
    reset.addEventListener("click", function () { view = full.slice(); draw(); });
    prev.addEventListener("click", function () { page--; draw(); });
    next.addEventListener("click", function () { page++; draw(); });
    function timeAt(clientX) {
      var rect = root.getBoundingClientRect();
      var px = (clientX - rect.left) * width / rect.width;
      return view[0] + (px - labelW) / (width - labelW - 10) * (view[1] - view[0]);
    }
    root.addEventListener("wheel", function (e) {
      e.preventDefault();
      zoom(e.deltaY < 0 ? 0.8 : 1.25, timeAt(e.clientX));
    }, { passive: false });
    var drag = null;
    root.addEventListener("mousedown", function (e) { drag = { x: e.clientX, view: view.slice() }; });
    window.addEventListener("mouseup", function () { drag = null; });
    window.addEventListener("mousemove", function (e) {
      if (!drag) return;
      var rect = root.getBoundingClientRect();
      var dt = (e.clientX - drag.x) * width / rect.width / (width - labelW - 10) * (drag.view[1] - drag.view[0]);
      view = [drag.view[0] - dt, drag.view[1] - dt];
      draw();
    });
    function ticks() {
      var w = view[1] - view[0], steps = [0.001, 0.01, 0.1, 1, 5, 10, 30, 60, 300, 600, 1800, 3600,
        7200, 21600, 43200, 86400, 604800, 2592000, 7776000, 31536000];
      var step = w / 8;
      for (var i = 0; i < steps.length; i++) if (w / steps[i] <= 8) { step = steps[i]; break; }
      var out = [];
      for (var t = Math.ceil(view[0] / step) * step; t <= view[1] && out.length < 20; t += step) out.push(t);
      return { list: out, step: step };
    }
    function label(t, step) {
      var s = fmtTs(t);
      if (step >= 86400) return s.slice(0, 10);
      if (step >= 60) return s.slice(5, 16);
      if (step >= 1) return s.slice(11, 19);
      return s.slice(11, 23);
    }
    function draw() {
      pages = Math.max(1, Math.ceil(order.length / TIMELINE_ROWS));
      page = Math.min(Math.max(0, page), pages - 1);
      var from = TIMELINE_ROWS === Infinity ? 0 : page * TIMELINE_ROWS;
      var shown = order.slice(from, from + TIMELINE_ROWS);
      var height = axisH + shown.length * rowH + 6;
      clear(root);
      root.setAttribute("viewBox", "0 0 " + width + " " + height);
      root.setAttribute("height", height);
      var tk = ticks();
      var axis = svg("g", { "class": "axis" });
      tk.list.forEach(function (t) {
        axis.appendChild(svg("line", { x1: x(t), x2: x(t), y1: axisH - 4, y2: height }));
        axis.appendChild(svg("text", { x: x(t) + 2, y: 12, text: label(t, tk.step) }));
      });
      root.appendChild(axis);
      var clip = svg("clipPath", { id: "timeline-clip" }, svg("rect", { x: labelW, y: 0, width: width - labelW, height: height }));
      root.appendChild(svg("defs", null, clip));
      var bars = svg("g", { "clip-path": "url(#timeline-clip)" });
      shown.forEach(function (r, i) {
        var y = axisH + i * rowH;
        if (i % 2 === 0) root.insertBefore(svg("rect", { "class": "row-band", x: 0, y: y, width: width, height: rowH }), axis);
        root.appendChild(svg("text", { "class": "host-label", x: 6, y: y + 15, text: r.ip }));
        r.alerts.forEach(function (a) {
          if (a.end < view[0] || a.ts > view[1]) return;
          var x0 = x(a.ts), x1 = Math.max(x(a.end), x0 + 5);
          var h = a.kind === "technique" ? 14 : 8;
          var by = y + (rowH - h) / 2;
          var g = svg("g", { "class": "bar", "data-bar": a.index, onclick: function (e) { e.stopPropagation(); openAlert(a); } }, [
            svg("rect", { x: x0, y: by, width: x1 - x0, height: h, rx: 2, fill: SEV_COLOR[a.sev], opacity: a.kind === "technique" ? 0.9 : 0.6 }),
            svg("title", { text: a.what + " " + a.src_ip + " → " + (a.dst_ip || "many") + (a.object ? " · " + a.object : "") + (a.tool ? " · " + a.tool : "") + " · " + fmtTs(a.ts) })
          ]);
          if (a.kind === "technique" && x1 - x0 > 12) {
            marksOf(a).forEach(function (m) {
              var mx = Math.min(Math.max(x(m.ts), x0), x1);
              g.appendChild(svg("rect", { x: mx - 1, y: by - 2, width: 2, height: h + 4, fill: PHASE_COLOR[m.phase] }));
            });
          }
          bars.appendChild(g);
        });
      });
      root.appendChild(bars);
      info.textContent = "source hosts " + (from + 1) + "–" + (from + shown.length) + " of " + order.length +
        " · showing " + fmtTs(view[0]).slice(0, 19) + " → " + fmtTs(view[1]).slice(0, 19);
      prev.disabled = page === 0;
      next.disabled = page >= pages - 1;
    }
    draw();
    var legend = document.getElementById("timeline-legend");
    PHASES.forEach(function (p) { legend.appendChild(el("span", { style: "--c:" + p[2], text: p[1] })); });
    legend.appendChild(el("span", { text: "bar colour: severity; thin bars: signals and unreadable sessions" }));
  }

  // ---- tables -------------------------------------------------------------------------------
  function tables() {
    alertsTable = makeTable(document.getElementById("alerts-table"), [
      { key: "ts", label: "time (UTC)", value: function (a) { return a.ts; }, render: function (a) { return fmtTs(a.ts); } },
      { key: "sev", label: "severity", value: function (a) { return SEV_RANK[a.sev]; }, num: true, render: function (a) { return sevBadge(a.sev); } },
      { key: "what", label: "what" },
      { key: "src_ip", label: "source" },
      { key: "dst_ip", label: "target", value: function (a) { return a.dst_ip || (a.targets || []).join(" "); } },
      { key: "object", label: "service / task / file", wrap: true },
      { key: "who", label: "user" },
      { key: "tool", label: "tool" },
      { key: "count", label: "count", num: true, value: function (a) { return a.count || 1; } }
    ], ALERTS, {
      sortKey: "ts",
      tableClass: "alerts",
      onRow: openAlert,
      rowAttrs: function (a) {
        return {
          "class": "alert-row", "data-index": a.index, "data-kind": a.kind, "data-src": a.src_ip || "",
          "data-dst": a.dst_ip || "", "data-service": a.service_name || a.task_path || ""
        };
      }
    });

    var users = {}, tools = {}, files = {};
    function group(map, key, a) {
      var g = map[key] || (map[key] = { key: key, technique: 0, signal: 0, visibility: 0, src: {}, dst: {}, other: {}, first: a.ts, last: a.end });
      g[a.kind]++;
      if (a.src_ip) g.src[a.src_ip] = 1;
      if (a.dst_ip) g.dst[a.dst_ip] = 1;
      g.first = Math.min(g.first, a.ts);
      g.last = Math.max(g.last, a.end);
      return g;
    }
    ALERTS.forEach(function (a) {
      if (a.who) {
        var u = group(users, a.who, a);
        if (a.tool) u.other[a.tool] = 1;
      }
      if (a.kind === "technique") {
        var t = group(tools, a.tool || "unknown", a);
        if (a.who) t.other[a.who] = 1;
      }
      (a.uploads || []).concat(a.upload ? [a.upload] : []).forEach(function (up) {
        var f = group(files, up.share + "\\" + up.name + "\u0000" + (up.sha256 || ""), a);
        f.file = up;
      });
    });
    function size(o) { return Object.keys(o).length; }
    function list(o) { var k = Object.keys(o); return k.slice(0, 5).join(", ") + (k.length > 5 ? " … (" + k.length + ")" : ""); }
    function vals(m) { return Object.keys(m).map(function (k) { return m[k]; }); }
    var spanCols = [
      { key: "first", label: "first", value: function (g) { return g.first; }, render: function (g) { return fmtTs(g.first); } },
      { key: "last", label: "last", value: function (g) { return g.last; }, render: function (g) { return fmtTs(g.last); } }
    ];
    makeTable(document.getElementById("users-table"), [
      { key: "key", label: "user" },
      { key: "technique", label: "attacks", num: true },
      { key: "signal", label: "signals", num: true },
      { key: "visibility", label: "unreadable", num: true },
      { key: "src", label: "from", value: function (g) { return list(g.src); } },
      { key: "dst", label: "targets", num: true, value: function (g) { return size(g.dst); } },
      { key: "other", label: "tools", value: function (g) { return list(g.other); } }
    ].concat(spanCols), vals(users), { sortKey: "technique", desc: true });
    makeTable(document.getElementById("tools-table"), [
      { key: "key", label: "tool" },
      { key: "technique", label: "attacks", num: true },
      { key: "src", label: "sources", num: true, value: function (g) { return size(g.src); } },
      { key: "dst", label: "targets", num: true, value: function (g) { return size(g.dst); } },
      { key: "other", label: "users", value: function (g) { return list(g.other); } }
    ].concat(spanCols), vals(tools), { sortKey: "technique", desc: true });
    makeTable(document.getElementById("files-table"), [
      { key: "share", label: "share", value: function (g) { return g.file.share; } },
      { key: "name", label: "name", wrap: true, value: function (g) { return g.file.name; } },
      { key: "size", label: "size", num: true, value: function (g) { return g.file.size; }, render: function (g) { return fmtBytes(g.file.size); } },
      { key: "pe", label: "PE", value: function (g) { return g.file.pe ? "yes" : "no"; } },
      { key: "sha256", label: "SHA-256", wrap: true, value: function (g) { return g.file.sha256 || ""; }, render: function (g) { return el("code", { text: g.file.sha256 || "" }); } },
      { key: "technique", label: "in attacks", num: true },
      { key: "signal", label: "in signals", num: true },
      { key: "dst", label: "targets", value: function (g) { return list(g.dst); } }
    ].concat(spanCols), vals(files), { sortKey: "technique", desc: true });

    makeTable(document.getElementById("counters-table"), [
      { key: "name", label: "counter" },
      { key: "value", label: "value", num: true }
    ], Object.keys(DATA.counters).map(function (k) { return { name: k, value: DATA.counters[k] }; }));
    makeTable(document.getElementById("anomalies-table"), [
      { key: "kind", label: "kind" }, { key: "layer", label: "layer" }, { key: "cap", label: "cap" },
      { key: "count", label: "count", num: true },
      { key: "first_ts", label: "first", render: function (g) { return fmtTs(g.first_ts); } },
      { key: "detail", label: "first detail", wrap: true }
    ], DATA.anomalies, { sortKey: "count", desc: true });
    var dropped = Object.keys(DATA.dropped);
    if (dropped.length) {
      var d = document.getElementById("dropped");
      d.appendChild(el("h4", { text: "Left out of this page (caps)" }));
      d.appendChild(simpleTable(["cap", "items"], dropped.map(function (k) { return [k, DATA.dropped[k]]; })));
    }
  }

  header();
  graph();
  timeline();
  tables();
  // #open=N: what clicking alert N does (through its bar when the timeline shows it).
  if (OPTS.open !== undefined && ALERTS[+OPTS.open]) {
    var bar = document.querySelector('[data-bar="' + (+OPTS.open) + '"]');
    if (bar) bar.dispatchEvent(new MouseEvent("click", { bubbles: true }));
    else showAlert(ALERTS[+OPTS.open]);
  }
  var ms = performance.now();
  document.documentElement.setAttribute("data-render-ms", ms.toFixed(1));
  // The load event comes once everything is laid out: what scripts/bench-report measures.
  window.addEventListener("load", function () {
    document.documentElement.setAttribute("data-load-ms", performance.now().toFixed(1));
  });
  document.getElementById("status").textContent = ALERTS.length + " alerts, " + EVENTS.length +
    " events · drawn in " + Math.round(ms) + " ms after navigation start";
})();
