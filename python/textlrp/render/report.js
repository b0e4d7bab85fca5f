/* textlrp report: draws the records kept in the JSON block of every .tlrp container.
   Every string from the data reaches the page through textContent (never as markup), and
   every token and name sits in its own <bdi>, so a bidi control in one cannot reorder the
   rest. The list is drawn a page at a time as the reader scrolls, so big reports open fast. */
(function () {
  "use strict";
  var PAGE = 200;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  function bdi(text, cls) {
    return el("bdi", cls, text);
  }

  function add(parent) {
    for (var k = 1; k < arguments.length; k++) {
      var c = arguments[k];
      parent.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return parent;
  }

  // The terminal's rule: two decimals, or an exponent when all would round to 0 or are huge.
  function numberFormat(max) {
    var exp = max >= 1e5 || (max > 0 && max < 0.005);
    return function (v) {
      if (v === null) return "n/a";
      var s = exp ? v.toExponential(2).replace(/e([+-])(\d)$/, "e$10$2") : v.toFixed(2);
      return s.charAt(0) === "-" ? s : "+" + s;
    };
  }

  function fixed2(p) {
    return p.toFixed(2);
  }

  function grouped(n) {
    return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  function render(root) {
    root.setAttribute("data-ready", "0");
    var meta = JSON.parse(root.querySelector("script.tlrp-meta").textContent);
    var body = root.querySelector("script.tlrp-data").textContent.trim();
    var recs = body ? JSON.parse("[" + body.split("\n").join(",") + "]") : [];
    var classes = meta.classes, steps = meta.steps, explain = meta.kind === "explain";
    var reportMax = 0, failed = 0, labelled = 0, correct = 0;
    var perClass = classes.map(function () { return 0; });

    recs.forEach(function (r, i) {
      r.i = i;
      if (typeof r.w === "string") r.w = r.w.split(" ");
      if (r.e !== undefined) {
        failed++;
        r.k = "failed";
        r.c = -1;
        return;
      }
      perClass[r.p]++;
      r.c = r.q[r.p];
      r.k = "";
      if (r.g !== undefined) {
        labelled++;
        r.k = r.g === r.p ? "correct" : "wrong";
        if (r.g === r.p) correct++;
      }
      if (r.r) {
        var m = 0;
        r.r.forEach(function (row) {
          row[1].forEach(function (v) { if (v !== null && Math.abs(v) > m) m = Math.abs(v); });
        });
        r.m = m;
        if (m > reportMax) reportMax = m;
      }
    });

    function fullColour(r) {
      if (meta.scale === "sentence") return r.m;
      if (meta.scale === "report") return reportMax;
      return meta.scale;
    }

    // ---------------------------------------------------------------- summary and legend
    var summary = el("div", "tlrp-summary");
    add(summary, el("b", null, grouped(recs.length - failed)),
        recs.length - failed === 1 ? " text" : " texts");
    if (failed) add(summary, " · ", el("b", "tlrp-bad", grouped(failed)),
                    failed === 1 ? " input line failed" : " input lines failed");
    if (labelled) {
      add(summary, " · accuracy ", el("b", null, (100 * correct / labelled).toFixed(1) + " %"),
          " (" + grouped(correct) + " of " + grouped(labelled) + " labelled texts)");
    }
    var chips = el("div", "tlrp-chips");
    add(chips, el("span", "tlrp-muted", "predicted:"));
    classes.forEach(function (name, c) {
      var b = el("button", "tlrp-chip");
      b.type = "button";
      add(b, bdi(name), " ", el("b", null, grouped(perClass[c])));
      b.addEventListener("click", function () { classSel.value = String(c); update(); });
      chips.appendChild(b);
    });
    summary.appendChild(chips);

    var legend = el("div", "tlrp-legend");
    if (explain) {
      var ramp = el("span", "tlrp-ramp");
      for (var s = -steps; s <= steps; s++) {
        if (s !== 0) ramp.appendChild(el("i", (s < 0 ? "n" : "p") + Math.abs(s)));
      }
      var note;
      if (meta.scale === "sentence") {
        note = "colour scale: each text's largest |relevance| is full colour";
      } else if (meta.scale === "report") {
        note = "colour scale: one for the whole report, |relevance| " +
          numberFormat(reportMax)(reportMax).slice(1) + " (the largest) is full colour";
      } else {
        note = "colour scale: fixed, |relevance| ≥ " + meta.scale + " is full colour";
      }
      legend.appendChild(add(el("div"), "against ", ramp, " for the explained class · " + note));
    }
    var key = el("div");
    if (explain) add(key, el("span", "tlrp-unk", "dotted"), ": not in the vocabulary · ");
    add(key, "bars: probability of each class, ", bdi(classes[0]), " … ",
        bdi(classes[classes.length - 1]), recs.length > 1 ? " (hover for the numbers, or tick numbers)"
          : " (hover for the numbers)");
    legend.appendChild(key);

    // ---------------------------------------------------------------- controls
    var bar = el("div", "tlrp-bar");
    var search = el("input");
    search.type = "search";
    search.placeholder = "search the texts";
    search.setAttribute("aria-label", "search the texts");
    function select(label, options) {
      var s = el("select");
      options.forEach(function (o) {
        var opt = el("option", null, o[1]);
        opt.value = o[0];
        s.appendChild(opt);
      });
      bar.appendChild(add(el("label"), label + " ", s));
      return s;
    }
    bar.appendChild(search);
    var classSel = select("predicted", [["", "any class"]].concat(classes.map(function (c, k) {
      return [String(k), c];
    })));
    var shows = [["", "all"]];
    if (labelled) shows.push(["wrong", "misclassified"], ["correct", "correct"]);
    if (failed) shows.push(["failed", "failed lines"]);
    var showSel = shows.length > 1 ? select("show", shows) : null;
    var sorts = [["input", "input order"], ["conf-", "confidence, lowest first"],
                 ["conf+", "confidence, highest first"], ["class", "predicted class"]];
    if (labelled) sorts.push(["label", "label"]);
    var sortSel = select("sort", sorts);
    var numbers = el("input");
    numbers.type = "checkbox";
    numbers.checked = !!meta.values;
    bar.appendChild(add(el("label"), numbers, " numbers"));
    var count = el("span", "tlrp-count");
    bar.appendChild(count);

    var list = el("div", "tlrp-list");
    var more = el("button", "tlrp-more", "show more");
    more.type = "button";
    var anchor = root.querySelector(".tlrp-top") || root.firstChild;
    var box = el("div");
    // One text (a notebook cell, `textlrp explain TEXT -f html`) needs no summary or controls.
    if (recs.length > 1) add(box, summary, legend, bar, list, more);
    else add(box, legend, list, more);
    root.insertBefore(box, anchor ? anchor.nextSibling : null);
    var fallback = root.querySelector(".tlrp-fallback");
    if (fallback) fallback.remove();

    // ---------------------------------------------------------------- one record
    function dist(r) {
      var d = el("span", "tlrp-dist");
      var words = [];
      r.q.forEach(function (p, c) {
        var i = el("i", c === r.p ? "tlrp-pred" : (c === r.g ? "tlrp-gold" : null));
        i.style.height = Math.max(1, Math.round(100 * p)) + "%";
        d.appendChild(i);
        words.push(classes[c] + " " + fixed2(p));
      });
      d.title = words.join(" · ");
      return d;
    }

    function tokens(r, row, full, fmt) {
      var box = el("div", "tlrp-toks");
      var unknown = {};
      (r.u || []).forEach(function (k) { unknown[k] = true; });
      r.w.forEach(function (word, k) {
        var v = row[k];
        var shade = 0;
        if (v && full > 0) shade = Math.max(1, Math.min(steps, Math.ceil(Math.abs(v) / full * steps)));
        var cls = "tk" + (shade ? (v > 0 ? " p" : " n") + shade : "") + (unknown[k] ? " tlrp-unk" : "");
        var t = bdi(word, cls);
        var shown = fmt(v);
        t.setAttribute("data-v", shown);
        t.title = shown + (unknown[k] ? " · not in the vocabulary" : "");
        if (k) box.appendChild(document.createTextNode(" "));
        box.appendChild(t);
      });
      return box;
    }

    function item(r) {
      var art = el("article", "tlrp-item" + (r.k ? " tlrp-" + r.k : ""));
      var head = el("div", "tlrp-meta");
      if (r.n !== null && r.n !== undefined) add(head, el("span", "tlrp-n", "#" + r.n), " ");
      art.appendChild(head);
      if (r.e !== undefined) {
        add(head, el("span", "tlrp-bad", "error: "), bdi(r.e));
        if (r.s !== null && r.s !== undefined) art.appendChild(add(el("div", "tlrp-src"), bdi(r.s)));
        return art;
      }
      add(head, "predicted ", add(el("b"), bdi(classes[r.p])), " ", dist(r), " ",
          el("span", "tlrp-muted", "p " + fixed2(r.c)));
      if (r.g !== undefined) {
        add(head, " · label ", bdi(classes[r.g]), " ",
            el("span", r.g === r.p ? "tlrp-good" : "tlrp-bad", r.g === r.p ? "✓" : "✗"));
      }
      var probs = el("span", "tlrp-probs");
      r.q.forEach(function (p, c) {
        add(probs, c ? " · " : " (", bdi(classes[c]), " " + fixed2(p));
      });
      add(probs, ")");
      head.appendChild(probs);
      if (!r.r) {
        art.appendChild(add(el("div", "tlrp-text"), bdi(r.s !== null ? r.s : r.w.join(" "))));
        return art;
      }
      var full = fullColour(r), fmt = numberFormat(r.m);
      if (r.r.length === 1) {
        if (r.r[0][0] !== r.p) add(head, " · explained ", add(el("b"), bdi(classes[r.r[0][0]])));
        art.appendChild(tokens(r, r.r[0][1], full, fmt));
      } else {
        r.r.forEach(function (row) {
          var line = el("div", "tlrp-row");
          var name = el("span", "tlrp-cls" + (row[0] === r.p ? " tlrp-predrow" : ""));
          add(name, row[0] === r.p ? "* " : "", bdi(classes[row[0]]));
          add(line, name, tokens(r, row[1], full, fmt));
          art.appendChild(line);
        });
      }
      if (r.s !== null && r.s !== undefined) {
        art.appendChild(add(el("div", "tlrp-src"), el("span", "tlrp-muted", "text "), bdi(r.s)));
      }
      return art;
    }

    // ---------------------------------------------------------------- view
    var view = [], shown = 0;

    function matches(r, q, cls, show) {
      if (show && r.k !== show) return false;
      if (cls !== "" && (r.k === "failed" || String(r.p) !== cls)) return false;
      if (!q) return true;
      if (r.low === undefined) r.low = (r.s !== null && r.s !== undefined ? r.s : (r.w || []).join(" ")).toLowerCase();
      return r.low.indexOf(q) >= 0;
    }

    // Failed lines (and, sorting by label, unlabelled ones) go last whatever the order.
    function last(a, b, key) {
      return (a[key] === undefined ? 1 : 0) - (b[key] === undefined ? 1 : 0);
    }
    var order = {
      "input": function (a, b) { return a.i - b.i; },
      "conf-": function (a, b) { return last(a, b, "p") || a.c - b.c || a.i - b.i; },
      "conf+": function (a, b) { return last(a, b, "p") || b.c - a.c || a.i - b.i; },
      "class": function (a, b) { return last(a, b, "p") || a.p - b.p || b.c - a.c || a.i - b.i; },
      "label": function (a, b) { return last(a, b, "g") || a.g - b.g || b.c - a.c || a.i - b.i; }
    };

    function page() {
      var frag = document.createDocumentFragment();
      var stop = Math.min(view.length, shown + PAGE);
      for (; shown < stop; shown++) frag.appendChild(item(view[shown]));
      list.appendChild(frag);
      more.hidden = shown >= view.length;
      count.textContent = view.length === recs.length
        ? grouped(recs.length) + " records"
        : grouped(view.length) + " of " + grouped(recs.length) + " records match";
    }

    function update() {
      var q = search.value.trim().toLowerCase(), cls = classSel.value;
      var show = showSel ? showSel.value : "";
      view = recs.filter(function (r) { return matches(r, q, cls, show); });
      view.sort(order[sortSel.value]);
      shown = 0;
      list.textContent = "";
      page();
    }

    function numbersToggle() {
      root.classList.toggle("tlrp-shownum", numbers.checked);
    }

    var timer = null;
    search.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(update, 150);
    });
    search.addEventListener("change", update);
    classSel.addEventListener("change", update);
    if (showSel) showSel.addEventListener("change", update);
    sortSel.addEventListener("change", update);
    numbers.addEventListener("change", numbersToggle);
    more.addEventListener("click", page);
    if (window.IntersectionObserver) {
      new IntersectionObserver(function (entries) {
        if (entries[0].isIntersecting && shown < view.length) page();
      }, { rootMargin: "800px" }).observe(more);
    }
    numbersToggle();
    update();
    root.setAttribute("data-ready", "1");
    document.documentElement.setAttribute("data-tlrp-ready", "1");
  }

  var roots = document.querySelectorAll(".tlrp:not([data-ready])");
  for (var k = 0; k < roots.length; k++) render(roots[k]);
})();
